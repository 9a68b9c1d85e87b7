// Small progressive enhancements; every page works without them.
(function () {
  "use strict";

  // Tick or clear every row checkbox of the dead-letter table at once.
  document.addEventListener("change", function (event) {
    var all = event.target.closest("[data-select-all]");
    if (!all) return;
    document.querySelectorAll('input[type=checkbox][name=ids]').forEach(function (box) { box.checked = all.checked; });
  });

  // Refresh the results table in place every N seconds, keeping tab, filters and page (they are in the URL).
  // Skipped while the operator is in the middle of something: a ticked checkbox or focus inside a form or the table.
  function busy(region) {
    if (document.hidden) return true;
    if (document.querySelector('input[type=checkbox][name=ids]:checked, [data-select-all]:checked')) return true;
    var active = document.activeElement;
    if (!active || active === document.body) return false;
    return Boolean(active.closest("form") || region.contains(active));
  }

  function start(region) {
    var seconds = parseInt(region.getAttribute("data-refresh-seconds"), 10) || 30;
    window.setInterval(function () {
      if (busy(region)) return;
      var url = new URL(region.getAttribute("data-refresh-url"), window.location.href);
      url.searchParams.set("fragment", "1");
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          if (response.redirected || !response.ok) return null; // logged out or server trouble: leave the page as is
          return response.text();
        })
        .then(function (html) {
          if (html !== null && !busy(region)) region.innerHTML = html;
        })
        .catch(function () { /* offline: try again next tick */ });
    }, seconds * 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh-url]").forEach(start);
  });
})();
