#pragma once

/// @file
/// The live statistics page that the stats endpoint serves at `GET /`.
///
/// One self-contained HTML document: inline CSS and JavaScript, charts drawn
/// by hand on `<canvas>`, nothing loaded from anywhere but `/stats` on the
/// same origin, which it polls once a second (datagrams/s, handlers in
/// flight, pool occupancy, arena high-water, pinned versus viewed bytes).
/// The source is net/stats_page.html; net/stats_page.cmake embeds it into
/// the library at build time as a raw string literal (docs/stats.md, "The
/// page", says why). A service with an HTTP server of its own can serve the
/// same page next to a `/stats` route of its own.

#include <string_view>

namespace mayfly {

/// The page, UTF-8. Static storage, valid for the life of the program; O(1),
/// no allocation.
std::string_view stats_page_html() noexcept;

} // namespace mayfly
