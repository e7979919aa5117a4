// meshbot topology card: the mesh as a graph, from the meshbot.get_topology action.
// Links are coloured by SNR, drawn solid for neighbor reports and the radio, dashed for direct
// receptions, dotted for traceroutes, and faded when they have not been seen for a while. Nodes
// sit at their reported positions (geo) or where a force-directed layout puts them (graph).
//
// It draws on a <canvas>: a mesh of 200 nodes and 2,000 links is too many SVG elements for
// frames under 50 ms. A frame is drawn on requestAnimationFrame only when something changed, and
// the force layout runs in short chunks between frames, so no interaction waits for it.
const STALE_SECONDS = 2 * 3600;
const SOURCES = ["neighbor", "direct", "traceroute", "radio"];
const DASH = { neighbor: [], radio: [], direct: [6, 4], traceroute: [2, 4] };
const LAYOUTS = ["geo", "graph", "auto"];
const AGE_CHOICES = [0, 900, 3600, STALE_SECONDS, 6 * 3600, 86400];
const SNR_ANY = -21;
const SNR_COLOURS = ["#2e7d32", "#9acd32", "#f9a825", "#c62828", "#9e9e9e"];
const LABEL_FONT = "11px Roboto, Arial, sans-serif";
const LABEL_HEIGHT = 13;
const FIT_PADDING = 28;
const GRAPH_STRETCH = 1.6;
const MAX_ZOOM = 40;
// A layout chunk leaves room in a 50 ms frame for the draw that follows it.
const LAYOUT_CHUNK_MS = 5;
// Links drawn per frame, at most: the rest of a frame draws the nodes and the labels.
const LINK_BUDGET_MS = 6;
const GRAPH_ITERATIONS = 300;
const FREE_NODE_ITERATIONS = 150;
// Positioned nodes are nudged at least this far apart (in units of the map's span) so that a
// pile of nodes in one village still shows as separate dots at the fitted zoom.
const GEO_MIN_SEPARATION = 0.028;
const SEPARATION_ROUNDS = 120;
const TAP_SLOP_PX = 6;
// Rows of links the panel lists, at most: as many as fit the card's height.
const PANEL_ROW_PX = 21;

function snrBand(snr) {
  if (snr === null || snr === undefined) return 4;
  if (snr >= 5) return 0;
  if (snr >= 0) return 1;
  if (snr >= -7) return 2;
  return 3;
}

// Deterministic: the same mesh gets the same graph layout on every load and every browser.
function seededRandom(text) {
  let seed = 2166136261;
  for (let i = 0; i < text.length; i++) seed = Math.imul(seed ^ text.charCodeAt(i), 16777619);
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function ago(seconds) {
  if (!Number.isFinite(seconds)) return "never";
  if (seconds < 60) return "now";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

function ageLabel(seconds) {
  if (!seconds) return "any time";
  return seconds < 3600 ? `${seconds / 60} min` : `${seconds / 3600} h`;
}

// Meshtastic's own default short name is the last four hex digits of the node id.
function labelOf(node) {
  return node.short_name || node.id.slice(-4);
}

function formatSnr(snr) {
  return snr == null ? "? dB" : `${Number(snr.toFixed(1))} dB`;
}

function epoch(iso) {
  const value = iso ? Date.parse(iso) / 1000 : NaN;
  return Number.isFinite(value) ? value : -Infinity;
}

function element(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) node.append(child);
  return node;
}

const STYLE = `
  .mbt-body { padding: 0 16px 12px; }
  .mbt-bar { display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: center;
    font-size: 13px; color: var(--primary-text-color); padding-bottom: 8px; }
  .mbt-bar label { display: inline-flex; gap: 4px; align-items: center; cursor: pointer; }
  .mbt-bar input[type=range] { width: 110px; }
  .mbt-bar output { min-width: 4.5em; font-variant-numeric: tabular-nums; }
  .mbt-bar select, .mbt-bar button { font: inherit; color: inherit;
    background: var(--card-background-color, #fff); border: 1px solid var(--divider-color, #ccc);
    border-radius: 6px; padding: 2px 8px; cursor: pointer; }
  .mbt-bar button[aria-pressed=true] { background: var(--primary-color, #03a9f4);
    color: var(--text-primary-color, #fff); border-color: transparent; }
  .mbt-seg { display: inline-flex; gap: 0; }
  .mbt-seg button:first-child { border-radius: 6px 0 0 6px; }
  .mbt-seg button:last-child { border-radius: 0 6px 6px 0; border-left: none; }
  .mbt-wrap { position: relative; overflow: hidden; border-radius: 8px;
    background: var(--secondary-background-color, #f5f5f5); }
  .mbt-wrap canvas { display: block; width: 100%; touch-action: none; cursor: grab; }
  .mbt-wrap canvas.mbt-dragging { cursor: grabbing; }
  .mbt-panel { position: absolute; top: 8px; right: 8px; max-width: 360px; font-size: 12px;
    background: var(--card-background-color, #fff); color: var(--primary-text-color);
    border: 1px solid var(--divider-color, #ccc); border-radius: 8px; padding: 8px 10px;
    box-shadow: 0 2px 6px rgba(0,0,0,.15); overflow: auto; }
  .mbt-panel[hidden], .mbt-bar [hidden] { display: none; }
  .mbt-panel.mbt-left { right: auto; left: 8px; }
  .mbt-panel h3 { font-size: 14px; margin: 0 0 2px; font-weight: 500; }
  .mbt-panel .mbt-sub { color: var(--secondary-text-color); margin-bottom: 6px; }
  .mbt-panel table { border-collapse: collapse; width: 100%; }
  .mbt-panel td { padding: 1px 4px 1px 0; white-space: nowrap; }
  .mbt-panel td.mbt-num { text-align: right; font-variant-numeric: tabular-nums; }
  .mbt-hint { position: absolute; left: 8px; bottom: 6px; font-size: 11px;
    color: var(--secondary-text-color); pointer-events: none; }
  .mbt-legend { font-size: 12px; color: var(--secondary-text-color); padding-top: 6px; }
  .mbt-error { padding: 16px; }
`;

class MeshbotTopologyCard extends HTMLElement {
  setConfig(config) {
    const layout = config.layout ?? "auto";
    if (!LAYOUTS.includes(layout)) {
      throw new Error(`layout must be one of ${LAYOUTS.join(", ")}, not ${layout}`);
    }
    this._config = { max_age: 86400, refresh: 30, height: 420, ...config, layout };
    this._filters = {
      sources: new Set(SOURCES),
      minSnr: config.min_snr ?? SNR_ANY,
      maxAge: config.link_age ?? 0,
    };
    this._layoutChoice = layout;
    this._view = { k: 1, x: 0, y: 0 };
    this._stats = {
      nodes: 0,
      nodesInView: 0,
      links: 0,
      labels: 0,
      overlaps: 0,
      frames: 0,
      lastFrameMs: 0,
      maxFrameMs: 0,
      layout: null,
      layoutDone: false,
      settled: false,
      zoom: 1,
      focus: null,
      snrBands: [],
    };
    // Home Assistant calls setConfig again when the card is edited: start the card over.
    this._layoutJob = null;
    this._world = null;
    this._frontLayer = this._backLayer = null;
    this._resizeObserver?.disconnect();
    this._resizeObserver = null;
    if (this._root) {
      this._root.remove();
      this._root = null;
      this._canvas = null;
      // The options may ask for other data (sources, entry, max_age).
      if (this._hass) this._fetch();
    }
  }

  set hass(hass) {
    const first = !this._hass;
    this._hass = hass;
    if (first) {
      this._fetch();
      this._timer = setInterval(() => this._fetch(), this._config.refresh * 1000);
    }
  }

  connectedCallback() {
    if (!this._canvas) return;
    // Dashboards move cards between views, which disconnects and reconnects them.
    if (this._pausedJob) {
      this._layoutJob = this._pausedJob;
      this._pausedJob = null;
      this._runLayoutChunk(this._layoutJob);
    }
    this._observeSize();
    this._invalidate();
  }

  disconnectedCallback() {
    clearInterval(this._timer);
    this._timer = undefined;
    this._hass = undefined;
    cancelAnimationFrame(this._frame);
    this._frame = undefined;
    this._pausedJob = this._layoutJob;
    this._layoutJob = null;
    this._resizeObserver?.disconnect();
    this._resizeObserver = null;
  }

  getCardSize() {
    return Math.ceil(this._config.height / 50) + 1;
  }

  /** What the last frame drew, for tests and for curious users in the console. */
  get stats() {
    return { ...this._stats };
  }

  /** The ids of the nodes drawn, the best connected first. */
  get nodeIds() {
    if (!this._graph) return [];
    const degree = this._degree;
    return this._graph.nodes
      .map((node, i) => [degree[i], node.id])
      .sort((p, q) => q[0] - p[0] || (p[1] < q[1] ? -1 : 1))
      .map(([, id]) => id);
  }

  /** Where a node is drawn, in client (viewport) pixels, or null when it is not drawn. */
  clientPositionOf(id) {
    const index = this._graph?.index.get(id);
    if (index === undefined || !this._screen) return null;
    const box = this._canvas.getBoundingClientRect();
    return [box.left + this._screen.x[index], box.top + this._screen.y[index]];
  }

  async _fetch() {
    const data = { max_age: this._config.max_age };
    if (this._config.entry) data.config_entry_id = this._config.entry;
    if (this._config.sources) data.sources = this._config.sources;
    try {
      const result = await this._hass.connection.sendMessagePromise({
        type: "call_service",
        domain: "meshbot",
        service: "get_topology",
        service_data: data,
        return_response: true,
      });
      this._data = result.response;
      this._error = null;
    } catch (err) {
      this._error = err.message || String(err);
    }
    this._update();
  }

  // Structure: built once; data and interactions only redraw the canvas and the panel.

  _build() {
    this._root = element("ha-card");
    this._root.header = this._config.title || "Mesh topology";
    const style = element("style", { textContent: STYLE });
    this._sourceBoxes = {};
    const sourceLabels = SOURCES.map((source) => {
      const box = element("input", { type: "checkbox", checked: true, value: source });
      box.dataset.source = source;
      box.addEventListener("change", () => {
        if (box.checked) this._filters.sources.add(source);
        else this._filters.sources.delete(source);
        this._applyFilters();
      });
      this._sourceBoxes[source] = box;
      return element("label", { title: `links from ${source}` }, [box, source]);
    });
    this._snrInput = element("input", {
      type: "range",
      min: SNR_ANY,
      max: 12,
      step: 1,
      value: this._filters.minSnr,
    });
    this._snrInput.dataset.filter = "min-snr";
    this._snrOutput = element("output");
    this._snrInput.addEventListener("input", () => {
      this._filters.minSnr = Number(this._snrInput.value);
      this._applyFilters();
    });
    const ages = AGE_CHOICES.includes(this._filters.maxAge)
      ? AGE_CHOICES
      : [...AGE_CHOICES, this._filters.maxAge].sort((a, b) => a - b);
    this._ageSelect = element(
      "select",
      {},
      ages.map((seconds) => element("option", { value: seconds, textContent: ageLabel(seconds) })),
    );
    this._ageSelect.dataset.filter = "age";
    this._ageSelect.value = String(this._filters.maxAge);
    this._ageSelect.addEventListener("change", () => {
      this._filters.maxAge = Number(this._ageSelect.value);
      this._applyFilters();
    });
    this._layoutButtons = ["geo", "graph"].map((mode) => {
      const button = element("button", {
        type: "button",
        textContent: mode === "geo" ? "Map" : "Graph",
        title: mode === "geo" ? "nodes at their positions" : "force-directed graph",
      });
      button.dataset.layout = mode;
      button.addEventListener("click", () => {
        this._layoutChoice = mode;
        this._relayout();
      });
      return button;
    });
    const reset = element("button", { type: "button", textContent: "Reset view" });
    reset.dataset.action = "reset";
    reset.addEventListener("click", () => {
      this._view = { k: 1, x: 0, y: 0 };
      this._invalidate();
    });
    const bar = element("div", { className: "mbt-bar" }, [
      ...sourceLabels,
      element("label", {}, ["min SNR", this._snrInput, this._snrOutput]),
      element("label", {}, ["seen within", this._ageSelect]),
      element("span", { className: "mbt-seg" }, this._layoutButtons),
      reset,
    ]);
    this._canvas = element("canvas");
    this._canvas.style.height = `${this._config.height}px`;
    this._canvas.setAttribute("role", "img");
    this._canvas.setAttribute("aria-label", "mesh topology");
    this._panel = element("div", { className: "mbt-panel", hidden: true });
    this._hint = element("div", {
      className: "mbt-hint",
      textContent: "scroll or pinch to zoom, drag to pan, tap a node",
    });
    this._wrap = element("div", { className: "mbt-wrap" }, [this._canvas, this._panel, this._hint]);
    this._legend = element("div", { className: "mbt-legend" });
    this._body = element("div", { className: "mbt-body" }, [bar, this._wrap, this._legend]);
    this._message = element("div", { className: "mbt-error", hidden: true });
    this._root.append(style, this._message, this._body);
    this.appendChild(this._root);
    this._bindPointer();
  }

  _observeSize() {
    if (this._resizeObserver || !this._wrap) return;
    this._resizeObserver = new ResizeObserver(() => this._invalidate());
    this._resizeObserver.observe(this._wrap);
  }

  _update() {
    if (!this._root) this._build();
    this._observeSize();
    this._message.hidden = !this._error;
    this._body.hidden = !!this._error;
    if (this._error) {
      this._message.textContent = this._error;
      return;
    }
    const computed = getComputedStyle(this);
    this._colours = {
      node: computed.getPropertyValue("--primary-color").trim() || "#03a9f4",
      text: computed.getPropertyValue("--primary-text-color").trim() || "#212121",
      halo: computed.getPropertyValue("--secondary-background-color").trim() || "#f5f5f5",
      accent: computed.getPropertyValue("--accent-color").trim() || "#ff9800",
    };
    const graph = this._buildGraph(this._data || {});
    // Filtering and laying out in a task of their own: with parsing, they could exceed a frame.
    const generation = (this._generation = (this._generation ?? 0) + 1);
    setTimeout(() => {
      if (generation !== this._generation) return;
      // A refresh that brings the same nodes and pairs keeps the layout where it is.
      this._sameShape = this._graph?.signature === graph.signature;
      this._graph = graph;
      if (this._selected && !graph.index.has(this._selected)) this._selected = null;
      this._applyFilters(false);
      this._relayout(true);
    }, 0);
  }

  _buildGraph({ nodes = [], links = [] }) {
    const sorted = [...nodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const index = new Map(sorted.map((node, i) => [node.id, i]));
    const kept = links.filter((link) => index.has(link.from) && index.has(link.to));
    const pairs = new Map();
    for (const link of kept) {
      const a = index.get(link.from);
      const b = index.get(link.to);
      const key = a < b ? a * 65536 + b : b * 65536 + a;
      if (!pairs.has(key)) pairs.set(key, [Math.min(a, b), Math.max(a, b)]);
    }
    const signature = `${sorted.map((n) => n.id).join(",")}|${[...pairs.keys()].join(",")}`;
    const graph = {
      nodes: sorted,
      index,
      links: kept.map((link) => ({
        source: link.source,
        snr: link.snr,
        a: index.get(link.from),
        b: index.get(link.to),
        seen: epoch(link.last_seen),
      })),
      pairs: [...pairs.values()],
      total: links.length,
      signature,
      positioned: sorted.filter((n) => n.latitude != null && n.longitude != null).length,
    };
    // Measured now, not in the first frame, which has enough to do.
    const measure = this._canvas.getContext("2d");
    measure.font = LABEL_FONT;
    this._labelWidths ??= new Map();
    for (const node of sorted) {
      const text = labelOf(node);
      if (!this._labelWidths.has(text)) this._labelWidths.set(text, measure.measureText(text).width);
    }
    return graph;
  }

  _applyFilters(redraw = true) {
    const graph = this._graph;
    if (!graph) return;
    const { sources, minSnr, maxAge } = this._filters;
    const now = Date.now() / 1000;
    this._snrOutput.value = minSnr <= SNR_ANY ? "any" : `≥ ${minSnr} dB`;
    // One line per pair of nodes and source: both directions of a link share a line, drawn in
    // the colour of the better direction; the panel lists each direction.
    const edges = new Map();
    const passing = [];
    for (const link of graph.links) {
      if (!sources.has(link.source)) continue;
      if (minSnr > SNR_ANY && (link.snr == null || link.snr < minSnr)) continue;
      if (maxAge && now - link.seen > maxAge) continue;
      passing.push(link);
      const key = `${Math.min(link.a, link.b)}:${Math.max(link.a, link.b)}:${link.source}`;
      const edge = edges.get(key);
      if (!edge) {
        edges.set(key, { a: link.a, b: link.b, source: link.source, snr: link.snr, seen: link.seen });
      } else {
        if (link.snr != null && (edge.snr == null || link.snr > edge.snr)) edge.snr = link.snr;
        edge.seen = Math.max(edge.seen, link.seen);
      }
    }
    const degree = new Uint16Array(graph.nodes.length);
    const edgeList = [...edges.values()];
    const bands = [0, 0, 0, 0, 0];
    for (const edge of edgeList) {
      bands[snrBand(edge.snr)]++;
      edge.stale = now - edge.seen > STALE_SECONDS;
      // Stale links at the bottom, then from the worst SNR up: the best links are on top.
      edge.bucket = (edge.stale ? 0 : 64) + (4 - snrBand(edge.snr)) * 8 + SOURCES.indexOf(edge.source);
      degree[edge.a]++;
      degree[edge.b]++;
    }
    // Drawn in runs of one look, so that the canvas state changes a few dozen times, not 2,000.
    edgeList.sort((p, q) => p.bucket - q.bucket);
    this._edges = edgeList;
    this._stats.snrBands = bands;
    this._edgesVersion = (this._edgesVersion ?? 0) + 1;
    this._passing = passing;
    this._degree = degree;
    const present = new Set(graph.links.map((link) => link.source));
    // Only the sources the data carries: a box for a source with no links would do nothing.
    for (const source of SOURCES) {
      this._sourceBoxes[source].parentElement.hidden = !present.has(source);
    }
    this._legend.textContent = "";
    this._legend.append(
      `${graph.nodes.length} nodes, ${graph.total} links · showing ${edgeList.length} lines · SNR: `,
      ...["≥5", "≥0", "≥-7", "<-7 dB"].flatMap((text, i) => [
        element("span", { textContent: text, style: `color:${SNR_COLOURS[i]}` }),
        " ",
      ]),
      "· solid: neighbor/radio, dashed: direct, dotted: traceroute · faded: not seen for 2 h",
    );
    if (redraw) this._renderPanel();
    this._invalidate();
  }

  // Layout, in world units; the view transform maps them to the canvas.

  _effectiveLayout() {
    if (this._layoutChoice !== "auto") return this._layoutChoice;
    return this._graph.positioned >= Math.max(2, this._graph.nodes.length / 2) ? "geo" : "graph";
  }

  _relayout(fromData = false) {
    const graph = this._graph;
    if (!graph) return;
    const mode = this._effectiveLayout();
    for (const button of this._layoutButtons) {
      button.setAttribute("aria-pressed", String(button.dataset.layout === mode));
    }
    const n = graph.nodes.length;
    const previous = this._world;
    const keep = fromData && this._sameShape && previous?.mode === mode && mode === "graph";
    if (keep) {
      this._invalidate();
      return;
    }
    const x = new Float64Array(n);
    const y = new Float64Array(n);
    const fixed = new Uint8Array(n);
    const random = seededRandom(graph.signature);
    let spring = 1;
    let iterations = GRAPH_ITERATIONS;
    let heat = Math.sqrt(n) / 10;
    let placed = null;
    if (mode === "geo" && graph.positioned >= 2) {
      placed = this._placeGeographically(x, y, fixed);
      spring = 0.6 / Math.sqrt(n);
      iterations = fixed.every(Boolean) ? 0 : FREE_NODE_ITERATIONS;
      heat = 0.1;
    } else {
      const side = Math.sqrt(n);
      const known = previous?.mode === "graph" ? previous : null;
      for (let i = 0; i < n; i++) {
        const old = known?.index.get(graph.nodes[i].id);
        if (old !== undefined) {
          x[i] = known.x[old];
          y[i] = known.y[old];
        } else {
          x[i] = (random() - 0.5) * side;
          y[i] = (random() - 0.5) * side;
        }
      }
      // A warm start only needs to settle what changed.
      if (known) heat /= 4;
    }
    const job = {
      ...{ x, y, fixed, spring, heat, iterations, placed, random, mode },
      ...{ done: 0, rounds: 0, pairs: graph.pairs, index: graph.index, quiet: false },
    };
    if (fromData && previous?.mode === mode) {
      // A refresh: the nodes stay where they were while the new layout runs in the
      // background, then move at once, so the links do not blink out every refresh.
      const shownX = Float64Array.from(x);
      const shownY = Float64Array.from(y);
      graph.nodes.forEach((node, i) => {
        const old = previous.index.get(node.id);
        if (old !== undefined) [shownX[i], shownY[i]] = [previous.x[old], previous.y[old]];
      });
      job.quiet = true;
      this._world = { mode, x: shownX, y: shownY, index: graph.index };
    } else {
      this._world = { mode, x, y, index: graph.index };
    }
    this._worldVersion = (this._worldVersion ?? 0) + 1;
    this._stats.layout = mode;
    this._stats.layoutDone = false;
    if (!fromData) this._view = { k: 1, x: 0, y: 0 };
    this._layoutJob = job;
    // The first chunk too runs in a task of its own, apart from whatever asked for the layout.
    setTimeout(() => this._runLayoutChunk(job), 0);
    this._invalidate();
  }

  _placeGeographically(x, y, fixed) {
    const nodes = this._graph.nodes;
    const placed = [];
    nodes.forEach((node, i) => {
      if (node.latitude != null && node.longitude != null) placed.push(i);
    });
    const midLat = placed.reduce((sum, i) => sum + nodes[i].latitude, 0) / placed.length;
    // Degrees of longitude shrink towards the poles; without this the map is stretched sideways.
    const squeeze = Math.cos((midLat * Math.PI) / 180);
    for (const i of placed) {
      x[i] = nodes[i].longitude * squeeze;
      y[i] = -nodes[i].latitude;
      fixed[i] = 1;
    }
    let [minX, maxX, minY, maxY] = [Infinity, -Infinity, Infinity, -Infinity];
    for (const i of placed) {
      minX = Math.min(minX, x[i]);
      maxX = Math.max(maxX, x[i]);
      minY = Math.min(minY, y[i]);
      maxY = Math.max(maxY, y[i]);
    }
    const span = Math.max(maxX - minX, maxY - minY) || 1e-6;
    for (const i of placed) {
      x[i] = (x[i] - (minX + maxX) / 2) / span;
      y[i] = (y[i] - (minY + maxY) / 2) / span;
    }
    return placed;
  }

  _seedFreeNodes(x, y, fixed, spring, random) {
    // A node without a position starts beside the positioned nodes it hears, or on a ring
    // around the map when it hears none of them; the force layout then settles it.
    const neighbours = this._graph.pairs;
    const sumX = new Float64Array(x.length);
    const sumY = new Float64Array(x.length);
    const count = new Uint16Array(x.length);
    for (const [a, b] of neighbours) {
      if (fixed[a] && !fixed[b]) {
        sumX[b] += x[a];
        sumY[b] += y[a];
        count[b]++;
      } else if (fixed[b] && !fixed[a]) {
        sumX[a] += x[b];
        sumY[a] += y[b];
        count[a]++;
      }
    }
    let ring = 0;
    for (let i = 0; i < x.length; i++) {
      if (fixed[i]) continue;
      if (count[i]) {
        x[i] = sumX[i] / count[i] + (random() - 0.5) * spring;
        y[i] = sumY[i] / count[i] + (random() - 0.5) * spring;
      } else {
        const angle = ring++ * 2.39996;
        x[i] = 0.6 * Math.cos(angle);
        y[i] = 0.6 * Math.sin(angle);
      }
    }
  }

  _runLayoutChunk(job) {
    if (this._layoutJob !== job) return;
    const { x, y, fixed, spring, pairs, iterations } = job;
    const n = x.length;
    const fx = new Float64Array(n);
    const fy = new Float64Array(n);
    const k2 = spring * spring;
    const started = performance.now();
    // Geo: the positioned nodes are first pushed apart, then the others seeded beside them.
    while (job.placed && performance.now() - started < LAYOUT_CHUNK_MS) {
      if (job.rounds++ >= SEPARATION_ROUNDS || !separate(job.placed, x, y, GEO_MIN_SEPARATION)) {
        job.placed = null;
        this._seedFreeNodes(x, y, fixed, spring, job.random);
      }
    }
    // Fruchterman-Reingold with a pull to the centre, so that parts of the mesh that do not
    // hear each other stay in view; capped and cooled so it always ends.
    while (
      !job.placed &&
      job.done < iterations &&
      performance.now() - started < LAYOUT_CHUNK_MS
    ) {
      fx.fill(0);
      fy.fill(0);
      for (let i = 0; i < n; i++) {
        const xi = x[i];
        const yi = y[i];
        for (let j = i + 1; j < n; j++) {
          const dx = xi - x[j];
          const dy = yi - y[j];
          const d2 = dx * dx + dy * dy || 1e-9;
          const f = k2 / d2;
          fx[i] += dx * f;
          fy[i] += dy * f;
          fx[j] -= dx * f;
          fy[j] -= dy * f;
        }
      }
      for (const [a, b] of pairs) {
        const dx = x[a] - x[b];
        const dy = y[a] - y[b];
        const f = Math.sqrt(dx * dx + dy * dy) / spring;
        fx[a] -= dx * f;
        fy[a] -= dy * f;
        fx[b] += dx * f;
        fy[b] += dy * f;
      }
      const temperature = job.heat * (1 - job.done / iterations) + spring / 100;
      for (let i = 0; i < n; i++) {
        if (fixed[i]) continue;
        const gx = fx[i] - (x[i] * 0.1) / spring;
        const gy = fy[i] - (y[i] * 0.1) / spring;
        const length = Math.sqrt(gx * gx + gy * gy) || 1e-9;
        const step = Math.min(length, temperature) / length;
        x[i] += gx * step;
        y[i] += gy * step;
      }
      job.done++;
    }
    const done = !job.placed && job.done >= iterations;
    if (done) {
      this._layoutJob = null;
      this._stats.layoutDone = true;
      this._world = { mode: job.mode, x, y, index: job.index };
    } else {
      setTimeout(() => this._runLayoutChunk(job), 0);
    }
    if (done || !job.quiet) this._worldVersion++;
    this._invalidate();
  }

  // View: the fit of the world to the canvas, then the user's zoom and pan on top.

  _fit(width, height) {
    const { x, y } = this._world;
    let [minX, maxX, minY, maxY] = [Infinity, -Infinity, Infinity, -Infinity];
    for (let i = 0; i < x.length; i++) {
      minX = Math.min(minX, x[i]);
      maxX = Math.max(maxX, x[i]);
      minY = Math.min(minY, y[i]);
      maxY = Math.max(maxY, y[i]);
    }
    if (!x.length) return { sx: 1, sy: 1, ox: width / 2, oy: height / 2 };
    const fitX = (width - 2 * FIT_PADDING) / (maxX - minX || 1);
    const fitY = (height - 2 * FIT_PADDING) / (maxY - minY || 1);
    const s = Math.min(fitX, fitY);
    // A graph layout has no shape of its own to keep: stretch it some way towards the card's
    // shape, where a map must keep its proportions.
    const stretch = this._world.mode === "graph" ? GRAPH_STRETCH : 1;
    const sx = Math.min(fitX, s * stretch);
    const sy = Math.min(fitY, s * stretch);
    return { sx, sy, ox: width / 2 - ((minX + maxX) / 2) * sx, oy: height / 2 - ((minY + maxY) / 2) * sy };
  }

  _zoomAt(px, py, factor) {
    const view = this._view;
    const k = Math.min(MAX_ZOOM, Math.max(0.5, view.k * factor));
    const applied = k / view.k;
    view.x = px - (px - view.x) * applied;
    view.y = py - (py - view.y) * applied;
    view.k = k;
    this._invalidate();
  }

  _nodeAt(px, py) {
    if (!this._screen) return null;
    const { x, y } = this._screen;
    let best = null;
    let bestD2 = 14 * 14;
    for (let i = 0; i < x.length; i++) {
      const d2 = (x[i] - px) ** 2 + (y[i] - py) ** 2;
      if (d2 < bestD2) {
        bestD2 = d2;
        best = this._graph.nodes[i].id;
      }
    }
    return best;
  }

  _bindPointer() {
    const canvas = this._canvas;
    const pointers = new Map();
    let gesture = null;
    const local = (event) => {
      const box = canvas.getBoundingClientRect();
      return [event.clientX - box.left, event.clientY - box.top];
    };
    canvas.addEventListener(
      "wheel",
      (event) => {
        event.preventDefault();
        const [px, py] = local(event);
        const scale = event.deltaMode === 1 ? 40 : event.deltaMode === 2 ? 400 : 1;
        this._zoomAt(px, py, Math.exp(-event.deltaY * scale * 0.002));
      },
      { passive: false },
    );
    canvas.addEventListener("pointerdown", (event) => {
      canvas.setPointerCapture(event.pointerId);
      pointers.set(event.pointerId, local(event));
      const points = [...pointers.values()];
      gesture = {
        moved: pointers.size > 1,
        start: points[0],
        view: { ...this._view },
        points,
      };
      canvas.classList.add("mbt-dragging");
    });
    canvas.addEventListener("pointermove", (event) => {
      const point = local(event);
      if (!pointers.has(event.pointerId)) {
        if (event.pointerType === "mouse") this._setHover(this._nodeAt(...point));
        return;
      }
      pointers.set(event.pointerId, point);
      const points = [...pointers.values()];
      if (points.length === 1 && gesture.points.length === 1) {
        const [dx, dy] = [point[0] - gesture.start[0], point[1] - gesture.start[1]];
        if (Math.hypot(dx, dy) > TAP_SLOP_PX) gesture.moved = true;
        if (gesture.moved) {
          this._view.x = gesture.view.x + dx;
          this._view.y = gesture.view.y + dy;
          this._invalidate();
        }
      } else if (points.length === 2 && gesture.points.length === 2) {
        // Pinch: the world point under the fingers' midpoint stays under it.
        const [a0, b0] = gesture.points;
        const [a1, b1] = points;
        const factor = Math.hypot(a1[0] - b1[0], a1[1] - b1[1]) / (Math.hypot(a0[0] - b0[0], a0[1] - b0[1]) || 1);
        const m0 = [(a0[0] + b0[0]) / 2, (a0[1] + b0[1]) / 2];
        const m1 = [(a1[0] + b1[0]) / 2, (a1[1] + b1[1]) / 2];
        const k = Math.min(MAX_ZOOM, Math.max(0.5, gesture.view.k * factor));
        const applied = k / gesture.view.k;
        this._view = {
          k,
          x: m1[0] - (m0[0] - gesture.view.x) * applied,
          y: m1[1] - (m0[1] - gesture.view.y) * applied,
        };
        this._invalidate();
      }
    });
    const release = (event) => {
      if (!pointers.has(event.pointerId)) return;
      pointers.delete(event.pointerId);
      if (event.type === "pointerup" && gesture && !gesture.moved && pointers.size === 0) {
        const hit = this._nodeAt(...local(event));
        this._selected = hit === this._selected ? null : hit;
        this._renderPanel();
        this._invalidate();
      }
      // The remaining finger of a pinch carries on as a drag from where it is.
      const points = [...pointers.values()];
      gesture = points.length
        ? { moved: true, start: points[0], view: { ...this._view }, points }
        : null;
      if (!points.length) canvas.classList.remove("mbt-dragging");
    };
    canvas.addEventListener("pointerup", release);
    canvas.addEventListener("pointercancel", release);
    canvas.addEventListener("pointerleave", (event) => {
      if (event.pointerType === "mouse" && !pointers.size) this._setHover(null);
    });
  }

  _setHover(id) {
    if (id === this._hovered) return;
    this._hovered = id;
    this._renderPanel();
    this._invalidate();
  }

  _focus() {
    return this._hovered ?? this._selected ?? null;
  }

  _renderPanel() {
    const id = this._focus();
    const graph = this._graph;
    const panel = this._panel;
    panel.textContent = "";
    panel.hidden = !id || !graph?.index.has(id);
    if (panel.hidden) return;
    panel.style.maxHeight = `${this._config.height - 16}px`;
    const index = graph.index.get(id);
    const node = graph.nodes[index];
    const now = Date.now() / 1000;
    const name = (i) => labelOf(graph.nodes[i]);
    const mine = this._passing
      .filter((link) => link.a === index || link.b === index)
      .sort((p, q) => (q.snr ?? -99) - (p.snr ?? -99));
    const heard = epoch(node.last_heard) > -Infinity ? epoch(node.last_heard) : epoch(node.last_seen);
    panel.append(
      element("h3", { textContent: node.long_name || node.short_name || node.id }),
      element("div", {
        className: "mbt-sub",
        textContent: `${node.id}${node.short_name ? ` · ${node.short_name}` : ""} · last heard ${ago(now - heard)} · ${mine.length} links`,
      }),
    );
    if (!mine.length) {
      panel.append(element("div", { textContent: "No links within the filters." }));
      return;
    }
    const room = Math.max(3, Math.floor((this._config.height - 90) / PANEL_ROW_PX));
    const rows = mine.slice(0, room).map((link) => {
      const arrow = link.a === index ? `→ ${name(link.b)}` : `← ${name(link.a)}`;
      const snr = formatSnr(link.snr);
      return element("tr", {}, [
        element("td", { textContent: arrow }),
        element("td", { textContent: link.source }),
        element("td", {
          className: "mbt-num",
          textContent: snr,
          style: `color:${SNR_COLOURS[snrBand(link.snr)]}`,
        }),
        element("td", { className: "mbt-num", textContent: ago(now - link.seen) }),
      ]);
    });
    panel.append(element("table", {}, rows));
    if (mine.length > room) {
      panel.append(element("div", { className: "mbt-sub", textContent: `and ${mine.length - room} more` }));
    }
  }

  // Drawing.

  _invalidate() {
    if (this._frame || !this._canvas) return;
    this._frame = requestAnimationFrame(() => {
      this._frame = undefined;
      this._draw();
    });
  }

  _draw() {
    if (!this._world || !this.isConnected) return;
    const started = performance.now();
    const canvas = this._canvas;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (!width || !height) return;
    const ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);

    const { x, y } = this._world;
    const n = x.length;
    const fit = this._fit(width, height);
    const view = this._view;
    const sx = new Float32Array(n);
    const sy = new Float32Array(n);
    let inView = 0;
    for (let i = 0; i < n; i++) {
      sx[i] = (fit.ox + x[i] * fit.sx) * view.k + view.x;
      sy[i] = (fit.oy + y[i] * fit.sy) * view.k + view.y;
      if (sx[i] >= 0 && sx[i] <= width && sy[i] >= 0 && sy[i] <= height) inView++;
    }
    this._screen = { x: sx, y: sy };

    const focusId = this._focus();
    const focus = focusId == null ? -1 : this._graph.index.get(focusId);
    const edges = this._edges;
    const near = new Uint8Array(n);
    if (focus >= 0) near[focus] = 1;

    // While the force layout settles, links would be redrawn at every chunk only to move
    // again: the nodes alone show it working, and the layout ends sooner.
    const settling = this._layoutJob !== null && !this._layoutJob.quiet;
    const focused = [];
    if (!settling) {
      for (const edge of edges) {
        if (edge.a !== focus && edge.b !== focus) continue;
        focused.push(edge);
        near[edge.a] = 1;
        near[edge.b] = 1;
      }
    }
    const scale = fit.sx * view.k;
    const transform = [scale, fit.sy * view.k, fit.ox * view.k + view.x, fit.oy * view.k + view.y];
    const layer = settling
      ? null
      : this._renderLinks(started, edges, sx, sy, width, height, ratio, transform);
    const dim = focus >= 0;
    if (layer) {
      // The last complete picture of the links, moved and scaled to the current view until
      // the picture for this view is complete.
      // Both axes scale alike: the fit's stretch depends only on the card's size, in the key.
      const zoom = scale / layer.transform[0];
      const dx = transform[2] - layer.transform[2] * zoom;
      const dy = transform[3] - layer.transform[3] * zoom;
      ctx.globalAlpha = dim ? 0.12 : 1;
      // Smoothing a moved picture costs the CPU rasteriser more than the picture is worth.
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(layer.canvas, dx, dy, (layer.canvas.width / ratio) * zoom, (layer.canvas.height / ratio) * zoom);
      ctx.globalAlpha = 1;
    }
    // The few links of the focused node are drawn wide, on top.
    ctx.lineWidth = 2.5;
    ctx.lineCap = "round";
    for (const edge of focused) {
      ctx.strokeStyle = SNR_COLOURS[snrBand(edge.snr)];
      ctx.setLineDash(DASH[edge.source] || []);
      ctx.globalAlpha = edge.stale ? 0.5 : 1;
      strokeClipped(ctx, sx[edge.a], sy[edge.a], sx[edge.b], sy[edge.b], width, height);
    }
    ctx.setLineDash([]);
    ctx.lineDashOffset = 0;

    const degree = this._degree;
    const radius = (i) => 3.5 + Math.min(4, Math.sqrt(degree[i]) * 0.8);
    ctx.fillStyle = this._colours.node;
    ctx.globalAlpha = dim ? 0.35 : 1;
    ctx.beginPath();
    for (let i = 0; i < n; i++) {
      if (near[i]) continue;
      ctx.moveTo(sx[i] + radius(i), sy[i]);
      ctx.arc(sx[i], sy[i], radius(i), 0, 2 * Math.PI);
    }
    ctx.fill();
    ctx.globalAlpha = 1;
    ctx.beginPath();
    for (let i = 0; i < n; i++) {
      if (!near[i]) continue;
      ctx.moveTo(sx[i] + radius(i), sy[i]);
      ctx.arc(sx[i], sy[i], radius(i), 0, 2 * Math.PI);
    }
    ctx.fill();
    if (focus >= 0) {
      ctx.strokeStyle = this._colours.accent;
      ctx.lineWidth = 3;
      ctx.beginPath();
      ctx.arc(sx[focus], sy[focus], radius(focus) + 3, 0, 2 * Math.PI);
      ctx.stroke();
    }

    if (focus >= 0) {
      // On the side away from the node, so that the panel does not hide what it describes.
      this._panel.classList.toggle("mbt-left", sx[focus] > width / 2);
    }
    const labels = settling ? [] : this._placeLabels(ctx, sx, sy, radius, near, focus, width, height);
    // A plate behind each label keeps it legible over the links; plates are one path, since
    // a halo stroked around each label's glyphs costs as much to draw as all the links.
    ctx.fillStyle = this._colours.halo;
    ctx.globalAlpha = 0.8;
    ctx.beginPath();
    for (const label of labels) ctx.rect(label.x - 1, label.y, label.w + 2, label.h);
    ctx.fill();
    ctx.font = LABEL_FONT;
    ctx.textBaseline = "middle";
    ctx.fillStyle = this._colours.text;
    for (const label of labels) {
      ctx.globalAlpha = dim && !near[label.i] ? 0.45 : 1;
      ctx.fillText(label.text, label.x, label.y + LABEL_HEIGHT / 2 + 0.5);
    }
    ctx.globalAlpha = 1;

    const ms = performance.now() - started;
    const stats = this._stats;
    stats.nodes = n;
    stats.nodesInView = inView;
    stats.links = layer?.edges === edges ? layer.count : 0;
    stats.settled = !settling && layer?.key === this._layerKey;
    stats.labels = labels.length;
    stats.overlaps = countOverlaps(labels);
    stats.frames++;
    stats.lastFrameMs = ms;
    stats.maxFrameMs = Math.max(stats.maxFrameMs, ms);
    stats.zoom = view.k;
    stats.focus = focusId;
  }

  _renderLinks(started, edges, sx, sy, width, height, ratio, transform) {
    // The links are drawn into an offscreen picture, as many per frame as fit in the frame's
    // budget, and shown once complete: 2,000 links take Chromium's software rasteriser longer
    // than a frame on a slow machine, and a pan or a pinch only moves the last picture.
    const key = [width, height, ratio, ...transform, this._worldVersion, this._edgesVersion].join();
    this._layerKey = key;
    let back = this._backLayer;
    if (!back || back.key !== key) {
      const canvas = back?.canvas ?? document.createElement("canvas");
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
      // Drawn by the CPU, so that reading one pixel back (below) is cheap and makes the
      // canvas rasterise what it was given now, inside the budget, and not later in whichever
      // frame first shows it.
      const ctx = canvas.getContext("2d", { willReadFrequently: true });
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, width, height);
      // One stroke per line, 1 px wide, in runs of one look: Skia rasterises an unfilled 1 px
      // line as a hairline, many times faster than a wider one, and one path of many crossing
      // lines with transparency costs it a coverage mask (in headless Chromium, 2,000 lines
      // 1.5 px wide in one path: 220 ms; 1 px, one stroke each: 14 ms).
      ctx.lineWidth = 1;
      back = { canvas, ctx, key, transform, edges, next: 0, count: 0 };
      this._backLayer = back;
    }
    const front = this._frontLayer;
    if (front?.key === key) return front;
    const ctx = back.ctx;
    let look = -1;
    while (back.next < edges.length) {
      if ((back.next & 31) === 0 && back.next) {
        ctx.getImageData(0, 0, 1, 1);
        if (performance.now() - started > LINK_BUDGET_MS) break;
      }
      const edge = edges[back.next++];
      if (edge.bucket !== look) {
        look = edge.bucket;
        ctx.strokeStyle = SNR_COLOURS[snrBand(edge.snr)];
        ctx.setLineDash(DASH[edge.source] || []);
        ctx.globalAlpha = edge.stale ? 0.25 : 0.7;
      }
      if (strokeClipped(ctx, sx[edge.a], sy[edge.a], sx[edge.b], sy[edge.b], width, height)) {
        back.count++;
      }
    }
    if (back.next < edges.length) {
      this._invalidate();
      return front;
    }
    ctx.getImageData(0, 0, 1, 1);
    this._backLayer = front ?? null;
    this._frontLayer = back;
    return back;
  }

  _placeLabels(ctx, sx, sy, radius, near, focus, width, height) {
    // Greedy, by priority: the focused node, then its neighbours, then the best-connected nodes.
    // A label goes to the first of four spots beside its dot that is on the canvas and clear of
    // every label and dot placed so far; a label with no such spot is not drawn.
    const nodes = this._graph.nodes;
    const degree = this._degree;
    ctx.font = LABEL_FONT;
    this._labelWidths ??= new Map();
    const order = [];
    for (let i = 0; i < nodes.length; i++) {
      if (sx[i] >= -40 && sx[i] <= width + 40 && sy[i] >= -20 && sy[i] <= height + 20) order.push(i);
    }
    const rank = (i) => (i === focus ? 2e6 : near[i] ? 1e6 : 0) + degree[i];
    order.sort((p, q) => rank(q) - rank(p) || p - q);
    const cell = 48;
    const grid = new Map();
    const add = (box) => {
      for (let gx = Math.floor(box.x / cell); gx <= Math.floor((box.x + box.w) / cell); gx++) {
        for (let gy = Math.floor(box.y / cell); gy <= Math.floor((box.y + box.h) / cell); gy++) {
          const key = gx * 4096 + gy;
          let list = grid.get(key);
          if (!list) grid.set(key, (list = []));
          list.push(box);
        }
      }
    };
    const clear = (box, own) => {
      for (let gx = Math.floor(box.x / cell); gx <= Math.floor((box.x + box.w) / cell); gx++) {
        for (let gy = Math.floor(box.y / cell); gy <= Math.floor((box.y + box.h) / cell); gy++) {
          for (const other of grid.get(gx * 4096 + gy) || []) {
            if (other.i === own && other.dot) continue;
            if (intersects(box, other)) return false;
          }
        }
      }
      return true;
    };
    for (const i of order) {
      const r = radius(i);
      add({ x: sx[i] - r, y: sy[i] - r, w: 2 * r, h: 2 * r, i, dot: true });
    }
    const placed = [];
    for (const i of order) {
      const text = labelOf(nodes[i]);
      let w = this._labelWidths.get(text);
      if (w === undefined) this._labelWidths.set(text, (w = ctx.measureText(text).width));
      const r = radius(i) + 2;
      const h = LABEL_HEIGHT;
      const spots = [
        [sx[i] + r, sy[i] - h / 2],
        [sx[i] - r - w, sy[i] - h / 2],
        [sx[i] - w / 2, sy[i] - r - h],
        [sx[i] - w / 2, sy[i] + r],
      ];
      for (const [lx, ly] of spots) {
        const box = { x: lx, y: ly, w, h, i, text };
        if (lx < 0 || ly < 0 || lx + w > width || ly + h > height) continue;
        if (!clear(box, i)) continue;
        add(box);
        placed.push(box);
        break;
      }
    }
    return placed;
  }
}

function cellKey(column, row) {
  return (column + 32768) * 65536 + (row + 32768);
}

// Pushes apart the nodes closer than `distance`, looking only at the nodes in neighbouring
// cells of a grid as wide as `distance`; returns whether any moved. One round: call it again
// until none move (or enough rounds have run).
function separate(nodes, x, y, distance) {
  const grid = new Map();
  for (const i of nodes) {
    const key = cellKey(Math.floor(x[i] / distance), Math.floor(y[i] / distance));
    const cell = grid.get(key);
    if (cell) cell.push(i);
    else grid.set(key, [i]);
  }
  let moved = false;
  for (const i of nodes) {
    const gx = Math.floor(x[i] / distance);
    const gy = Math.floor(y[i] / distance);
    for (let cx = gx - 1; cx <= gx + 1; cx++) {
      for (let cy = gy - 1; cy <= gy + 1; cy++) {
        for (const j of grid.get(cellKey(cx, cy)) || []) {
          if (j <= i) continue;
          let dx = x[j] - x[i];
          let dy = y[j] - y[i];
          const gap = Math.sqrt(dx * dx + dy * dy);
          if (gap >= distance) continue;
          if (gap < 1e-9) {
            // Same position: split along a direction fixed by the pair, not by chance.
            const angle = i * 7 + j * 13;
            dx = Math.cos(angle) * 1e-9;
            dy = Math.sin(angle) * 1e-9;
          }
          const push = (distance - gap) / 2 / (gap || 1e-9);
          x[i] -= dx * push;
          y[i] -= dy * push;
          x[j] += dx * push;
          y[j] += dy * push;
          moved = true;
        }
      }
    }
  }
  return moved;
}

// Zoomed in, a link runs thousands of pixels past the canvas, and the canvas dashes all of it
// before clipping (a dotted 2,000-link mesh took 80 ms a frame): stroke only the visible part,
// with the dash offset that keeps its pattern anchored to the link's start while panning.
function strokeClipped(ctx, x1, y1, x2, y2, width, height) {
  const margin = 4;
  const dx = x2 - x1;
  const dy = y2 - y1;
  let t0 = 0;
  let t1 = 1;
  const edges = [
    [-dx, x1 + margin],
    [dx, width + margin - x1],
    [-dy, y1 + margin],
    [dy, height + margin - y1],
  ];
  for (const [p, q] of edges) {
    if (p === 0) {
      if (q < 0) return false;
    } else {
      const t = q / p;
      if (p < 0) {
        if (t > t1) return false;
        if (t > t0) t0 = t;
      } else {
        if (t < t0) return false;
        if (t < t1) t1 = t;
      }
    }
  }
  ctx.lineDashOffset = t0 * Math.hypot(dx, dy);
  ctx.beginPath();
  ctx.moveTo(x1 + t0 * dx, y1 + t0 * dy);
  ctx.lineTo(x1 + t1 * dx, y1 + t1 * dy);
  ctx.stroke();
  return true;
}

function intersects(p, q) {
  return p.x < q.x + q.w && q.x < p.x + p.w && p.y < q.y + q.h && q.y < p.y + p.h;
}

// Checked apart from the placement, by brute force, so that the count shows what was drawn.
function countOverlaps(labels) {
  let overlaps = 0;
  for (let p = 0; p < labels.length; p++) {
    for (let q = p + 1; q < labels.length; q++) {
      if (intersects(labels[p], labels[q])) overlaps++;
    }
  }
  return overlaps;
}

// Home Assistant's app bundle replaces window.customElements with a scoped-registry polyfill
// while it boots, and this module (add_extra_js_url) loads alongside that bundle. When it runs
// first, its definition lands in the native registry, which the polyfill's get() and
// whenDefined() ignore: the dashboard shows "Configuration error" on about one load in three
// (home-assistant/frontend#52960). So define now, and again in whichever registry is current
// once the app has defined its root element, which it does after the swap, through the
// polyfill, so the registry seen here at load time reports it either way.
const CARD_TAG = "meshbot-topology-card";

function defineCard() {
  if (!window.customElements.get(CARD_TAG)) {
    window.customElements.define(CARD_TAG, MeshbotTopologyCard);
  }
}

defineCard();
window.customElements.whenDefined("home-assistant").then(defineCard);
window.customCards = window.customCards || [];
window.customCards.push({
  type: "meshbot-topology-card",
  name: "meshbot topology",
  description: "Who hears whom on the Meshtastic mesh, coloured by SNR.",
});
