// Owned by the energy/weather package (H2), which replaces this file.
import { html } from '../vendor/preact-htm.js';

export default function Page() {
  return html`<p class="muted">This page is not built yet.</p>`;
}
