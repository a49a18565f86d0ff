// Preact + htm in one module (htm's `preact/standalone` build): what every
// page imports (`import { html, useState } from '../vendor/preact-htm.js'`).
export * from './htm/standalone.module.js';
