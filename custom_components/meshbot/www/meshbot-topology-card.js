// meshbot topology card: the mesh as a graph, from the meshbot.get_topology action.
// Nodes sit at their reported positions (or on a ring when they have none); links are coloured by
// SNR, drawn solid for neighbor reports and the radio, dashed for direct receptions, dotted for
// traceroutes, and faded when they have not been seen for a while.
const STALE_SECONDS = 2 * 3600;

function snrColour(snr) {
  if (snr === null || snr === undefined) return "#9e9e9e";
  if (snr >= 5) return "#2e7d32";
  if (snr >= 0) return "#9acd32";
  if (snr >= -7) return "#f9a825";
  return "#c62828";
}

const DASH = { neighbor: "", radio: "", direct: "6 4", traceroute: "2 4" };

class MeshbotTopologyCard extends HTMLElement {
  setConfig(config) {
    this._config = { max_age: 86400, refresh: 30, height: 420, ...config };
    this._data = null;
  }

  set hass(hass) {
    const first = !this._hass;
    this._hass = hass;
    if (first) {
      this._fetch();
      this._timer = setInterval(() => this._fetch(), this._config.refresh * 1000);
    }
  }

  disconnectedCallback() {
    clearInterval(this._timer);
    this._timer = undefined;
    this._hass = undefined;
  }

  getCardSize() {
    return Math.ceil(this._config.height / 50);
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
    this._render();
  }

  _layout(nodes, width, height) {
    const placed = nodes.filter((n) => n.latitude !== null && n.longitude !== null);
    const points = {};
    const pad = 30;
    if (placed.length >= 2) {
      const lats = placed.map((n) => n.latitude);
      const lons = placed.map((n) => n.longitude);
      const [minLat, maxLat, minLon, maxLon] = [Math.min(...lats), Math.max(...lats), Math.min(...lons), Math.max(...lons)];
      const spanLat = maxLat - minLat || 1e-6;
      const spanLon = maxLon - minLon || 1e-6;
      for (const n of placed) {
        points[n.id] = [
          pad + ((n.longitude - minLon) / spanLon) * (width - 2 * pad),
          pad + ((maxLat - n.latitude) / spanLat) * (height - 2 * pad),
        ];
      }
    }
    const rest = nodes.filter((n) => !(n.id in points));
    rest.forEach((n, i) => {
      const angle = (2 * Math.PI * i) / Math.max(rest.length, 1);
      const r = Math.min(width, height) / 2 - pad;
      points[n.id] = [width / 2 + r * Math.cos(angle), height / 2 + r * Math.sin(angle)];
    });
    return points;
  }

  _render() {
    if (!this._root) {
      this._root = document.createElement("ha-card");
      this._root.header = this._config.title || "Mesh topology";
      this.appendChild(this._root);
    }
    const width = 600;
    // `height` is in pixels: the drawing scales down to narrow cards, never up past it.
    const height = this._config.height;
    if (this._error) {
      this._root.innerHTML = `<div style="padding:16px">${this._error}</div>`;
      return;
    }
    const { nodes = [], links = [] } = this._data || {};
    const points = this._layout(nodes, width, height);
    const now = Date.now() / 1000;
    const lines = links
      .filter((l) => points[l.from] && points[l.to])
      .map((l) => {
        const [x1, y1] = points[l.from];
        const [x2, y2] = points[l.to];
        const age = now - Date.parse(l.last_seen) / 1000;
        const opacity = age > STALE_SECONDS ? 0.25 : 0.9;
        return `<line x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" stroke="${snrColour(l.snr)}" stroke-width="2" stroke-dasharray="${DASH[l.source] || ""}" opacity="${opacity}"><title>${l.from} → ${l.to} (${l.source}) SNR ${l.snr ?? "?"} dB</title></line>`;
      })
      .join("");
    const dots = nodes
      .map((n) => {
        const [x, y] = points[n.id];
        const label = (n.short_name || n.id).replace(/[<>&"]/g, "");
        return `<g><circle cx="${x}" cy="${y}" r="6" fill="var(--primary-color)"><title>${(n.long_name || n.id).replace(/[<>&"]/g, "")}</title></circle><text x="${x + 8}" y="${y + 4}" font-size="11" fill="var(--primary-text-color)">${label}</text></g>`;
      })
      .join("");
    this._root.innerHTML = `
      <div style="padding:0 16px 16px">
        <svg viewBox="0 0 ${width} ${height}" width="100%" style="display:block;max-height:${height}px" role="img" aria-label="mesh topology">${lines}${dots}</svg>
        <div style="font-size:12px;color:var(--secondary-text-color)">
          ${nodes.length} nodes, ${links.length} links · SNR: <span style="color:#2e7d32">≥5</span>
          <span style="color:#9acd32">≥0</span> <span style="color:#f9a825">≥-7</span>
          <span style="color:#c62828">&lt;-7 dB</span> · solid: neighbor/radio, dashed: direct,
          dotted: traceroute · faded: not seen for 2 h
        </div>
      </div>`;
  }
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
