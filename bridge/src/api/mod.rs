//! The bridge's HTTP port. Today: `GET /api/health`. Home Assistant's
//! WebSocket and REST APIs (DESIGN.md §4) are served here next.

pub mod health;
