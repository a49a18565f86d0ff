import { html } from '../vendor/preact-htm.js';

export default function Page() {
  return html`<p class="muted">Loading…</p>`;
}
