"""What the maps draw and how, shared by the Streamlit screens (``ui/map.py``) and the plain
leader's page (``webapp/glance.py``): the colours, the canvas tile layer ``L.WgFastTiles`` and
the style of each tile layer.

Why here, one floor below the screens: the leader's first view is served outside Streamlit
by the dashboard's own routes (``webapp``), which may not import ``ui``; a colour or a style
written twice would drift apart (a grid red on one map and orange on the other).
"""
from __future__ import annotations

from analysis.overview import NO_WORKER, OK, OVER, UNDER, UNKNOWN

COLOURS = {
    NO_WORKER: "#d7301f",  # red: no full-time worker (一格一员)
    OVER: "#fd8d3c",  # orange: households over the band / residents over the ceiling
    UNDER: "#6baed6",  # blue: households under the band
    OK: "#41ab5d",  # green
    UNKNOWN: "#d4d4d4",  # grey: the viewer's scope may not read this grid's staff (no verdict)
    "community": "#3f3f46",
    "current": "#7c3aed",
    "neighbour": "#737373",
    "building": "#8c96c6",
    "building_empty": "#c7c7c7",
    "road_major": "#e8a33d",
    "road": "#b9b4aa",
    "camera_online": "#2563eb",
    "camera_offline": "#9ca3af",
    "facility": "#db2777",
    "background": "#f3f1ec",
    "home_in": "#16a34a",  # siting: a home within the radius of an open site
    "home_out": "#dc2626",  # … and beyond it
    "site_existing": "#111827",
}


# Leaflet.VectorGrid makes one Leaflet path object (an SVG element, or a canvas path with
# its own bookkeeping) per feature: at zoom 15 a dense district puts 40,000 buildings on
# screen, and a city's opening view 5,000 grid outlines, which took seconds of the
# browser's main thread. This subclass keeps VectorGrid's fetching and decoding and draws
# each tile straight onto one canvas, one path per style; clicks are hit-tested against
# the decoded features of the tile under the pointer.
FAST_TILES_JS = """
if (!L.WgFastTiles) {
  L.WgFastTiles = L.VectorGrid.Protobuf.extend({
    createTile: function (coords, done) {
      var size = this.getTileSize(), self = this;
      var tile = L.DomUtil.create('canvas', 'leaflet-tile');
      tile.width = size.x; tile.height = size.y;
      this._getVectorTilePromise(coords).then(function (json) {
        var ctx = tile.getContext('2d'), kept = [], k = 1, labels = [];
        ctx.lineJoin = 'round'; ctx.lineCap = 'round';
        for (var name in json.layers) {
          var layer = json.layers[name], fn = self.options.vectorTileLayerStyles[name], groups = {};
          k = size.x / layer.extent;
          for (var i = 0; i < layer.features.length; i++) {
            var f = layer.features[i], st = (fn instanceof Function) ? fn(f.properties, coords.z) : fn;
            var key = [f.type, st.fillColor, st.fillOpacity, st.color, st.weight, st.opacity, st.fill, st.stroke, st.radius].join('|');
            if (st.label) { labels.push([f, st]); }
            (groups[key] = groups[key] || {st: st, type: f.type, feats: []}).feats.push(f);
            kept.push(f);
          }
          for (var key in groups) {
            var g = groups[key], s = g.st;
            ctx.beginPath();
            if (g.type === 1) {  // points (event cases): one circle each, filled and ringed
              for (var j = 0; j < g.feats.length; j++) {
                var pts = g.feats[j].geometry;
                for (var r = 0; r < pts.length; r++) {
                  var pt = pts[r][0] || pts[r];
                  ctx.moveTo(pt.x * k + s.radius, pt.y * k); ctx.arc(pt.x * k, pt.y * k, s.radius, 0, 2 * Math.PI);
                }
              }
              ctx.globalAlpha = s.fillOpacity === undefined ? 1 : s.fillOpacity; ctx.fillStyle = s.fillColor || s.color; ctx.fill();
              if (s.weight) { ctx.globalAlpha = s.opacity === undefined ? 1 : s.opacity; ctx.strokeStyle = s.color; ctx.lineWidth = s.weight; ctx.setLineDash([]); ctx.stroke(); }
              continue;
            }
            for (var j = 0; j < g.feats.length; j++) {
              var rings = g.feats[j].geometry;
              for (var r = 0; r < rings.length; r++) {
                var ring = rings[r];
                ctx.moveTo(ring[0].x * k, ring[0].y * k);
                for (var q = 1; q < ring.length; q++) { ctx.lineTo(ring[q].x * k, ring[q].y * k); }
                if (g.type === 3) { ctx.closePath(); }
              }
            }
            if (g.type === 3 && s.fill !== false) {
              ctx.globalAlpha = s.fillOpacity === undefined ? 0.2 : s.fillOpacity; ctx.fillStyle = s.fillColor || s.color; ctx.fill('evenodd');
            }
            if (s.stroke !== false && s.weight) {
              ctx.globalAlpha = s.opacity === undefined ? 1 : s.opacity; ctx.strokeStyle = s.color; ctx.lineWidth = s.weight;
              ctx.setLineDash(s.dashArray ? String(s.dashArray).split(/[ ,]+/).map(Number) : []);
              ctx.stroke();
            }
          }
        }
        ctx.globalAlpha = 1; ctx.textAlign = 'center'; ctx.textBaseline = 'middle'; ctx.font = 'bold 11px sans-serif';
        for (var li = 0; li < labels.length; li++) {  // a cluster's count on its dot
          var lp = labels[li][0].geometry[0], lq = lp[0] || lp;
          ctx.fillStyle = labels[li][1].labelColor || '#ffffff'; ctx.fillText(labels[li][1].label, lq.x * k, lq.y * k);
        }
        tile._wg = {features: kept, k: k};
        done(null, tile);
      });
      return tile;
    },
    // The polygon feature drawn at a map click, or null (tile-local, in MVT units).
    featureAt: function (latlng) {
      if (!this._map || this._tileZoom === undefined) { return null; }
      var ts = this.getTileSize(), z = this._tileZoom, p = this._map.project(latlng, z);
      var c = p.unscaleBy(ts).floor(); c.z = z;
      var t = this._tiles[this._tileCoordsToKey(c)];
      if (!t || !t.el._wg) { return null; }
      var w = t.el._wg, local = p.subtract(c.scaleBy(ts)), x = local.x / w.k, y = local.y / w.k;
      for (var i = w.features.length - 1; i >= 0; i--) {
        var f = w.features[i], inside = false;
        if (f.type === 1 && this.options.pickPoints) {  // a point: within 8 px of it
          for (var r = 0; r < f.geometry.length; r++) {
            var pt = f.geometry[r][0] || f.geometry[r], dx = (pt.x - x) * w.k, dy = (pt.y - y) * w.k;
            if (dx * dx + dy * dy <= 64) { return f; }
          }
          continue;
        }
        if (f.type !== 3) { continue; }
        for (var r = 0; r < f.geometry.length; r++) {
          var ring = f.geometry[r];
          for (var a = 0, b = ring.length - 1; a < ring.length; b = a++) {
            if (((ring[a].y > y) !== (ring[b].y > y)) &&
                (x < (ring[b].x - ring[a].x) * (y - ring[a].y) / (ring[b].y - ring[a].y) + ring[a].x)) { inside = !inside; }
          }
        }
        if (inside) { return f; }
      }
      return null;
    }
  });
  // One click handler per map: the first pickable layer (by pickPriority) with a feature
  // under the pointer fires 'click' with that feature, as a Leaflet path would.
  L.WgFastTiles.pickable = function (map, layer) {
    map._wgPickable = map._wgPickable || [];
    if (map._wgPickable.indexOf(layer) < 0) { map._wgPickable.push(layer); }
    if (map._wgPick) { return; }
    map._wgPick = function (e) {
      var layers = map._wgPickable.filter(function (l) { return map.hasLayer(l); })
        .sort(function (a, b) { return b.options.pickPriority - a.options.pickPriority; });
      for (var i = 0; i < layers.length; i++) {
        var f = layers[i].featureAt(e.latlng);
        // a feature without an id (the grids layer's community aggregates at low zoom): the next layer's
        if (f && (f.id !== undefined || (f.properties && f.properties.id !== undefined))) {
          var props = L.extend({}, f.properties);
          if (f.id !== undefined && props.id === undefined) { props.id = f.id; }  // the MVT feature id
          layers[i].fire('click', {latlng: e.latlng, layer: {properties: props}, sourceTarget: layers[i]}); return;
        }
      }
    };
    map.on('click', map._wgPick);
  };
}
"""


TILE_STYLES = {
    # VectorGrid style functions: (properties, zoom) -> Leaflet path options.
    "grids": """function (p, z) {
        var c = COLOURS[p.st] || COLOURS.ok;
        return {weight: z >= %(bz)d ? 3 : 1.5, color: c, opacity: 0.95, fill: z < %(bz)d, fillColor: c, fillOpacity: 0.28};
    }""",
    "communities": """function (p, z) {
        return {weight: 2.5, color: COLOURS.community, opacity: 0.9, dashArray: '8 5', fill: false};
    }""",
    "buildings": """function (p, z) {
        return {weight: 0.6, color: '#4b5563', opacity: 0.8, fill: true, fillOpacity: 0.75,
                fillColor: p.h ? COLOURS.building : COLOURS.building_empty};
    }""",
    # event cases by stage (EVENT_STAGE_COLOURS), overdue ringed red; a cluster (below the
    # detail zoom, webapp/tiles.py) larger with its count on it
    "events": """function (p, z) {
        var c = STAGES[p.s] || '#6b7280', n = p.n || 1;
        var r = n > 1 ? Math.min(z < 15 ? 14 : 9, 7 + Math.log(n) / Math.LN2) : (p.o ? 8 : 6);
        return {radius: r, fill: true, fillColor: c, fillOpacity: n > 1 ? 0.9 : 1, color: p.o ? '#dc2626' : '#ffffff',
                weight: p.o ? 4 : 1.5, opacity: 1, label: n > 1 ? (n > 999 ? Math.round(n / 1000) + 'k' : String(n)) : null};
    }""",
    # points drawn as tiles (a city's cameras and facilities): as the GeoJSON markers look
    "cameras": """function (p, z) {
        return {radius: 5, fill: true, fillColor: p.st === 'online' ? COLOURS.camera_online : COLOURS.camera_offline,
                fillOpacity: 1, color: '#ffffff', weight: 1, opacity: 1};
    }""",
    "facilities": """function (p, z) {
        return {radius: 7, fill: true, fillColor: COLOURS.facility, fillOpacity: 1, color: '#ffffff', weight: 1, opacity: 1};
    }""",
    "roads": """function (p, z) {
        var major = MAJOR.indexOf(p.c) >= 0;
        return {weight: major ? (z >= 15 ? 4 : 2.5) : (z >= 15 ? 2 : 1), color: major ? COLOURS.road_major : COLOURS.road, opacity: 0.9};
    }""",
}
TILE_Z = {"roads": 1, "buildings": 2, "communities": 3, "grids": 4, "events": 6, "facilities": 7, "cameras": 8}
