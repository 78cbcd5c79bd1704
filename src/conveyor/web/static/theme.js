// Conveyor dashboard: the light or dark theme chosen with the header's toggle (kept in
// localStorage), applied before the page is drawn; without a choice the system's is used.
"use strict";
(function () {
  var theme = null;
  try { theme = window.localStorage.getItem("conveyor.theme"); } catch (e) { theme = null; }
  if (theme === "light" || theme === "dark") { document.documentElement.dataset.theme = theme; }
})();
