// sked console: progressive enhancement only; every page works without this script.
// - live regions ([data-live][id]) refresh every <body data-refresh> ms while the tab is visible;
// - <time datetime> gets the viewer's local time next to UTC;
// - the theme toggle; confirmations for [data-confirm] buttons.
(function () {
  "use strict";
  var root = document.documentElement;
  var saved = null;
  try { saved = localStorage.getItem("sked-theme"); } catch (e) { /* storage off */ }
  if (saved === "dark" || saved === "light") root.setAttribute("data-theme", saved);

  function localTimes(scope) {
    var zone = "";
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { /* old browser */ }
    scope.querySelectorAll("time[datetime]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (isNaN(d.getTime())) return;
      var local = d.toLocaleString(undefined, { year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short" });
      t.setAttribute("data-local", local);
      t.setAttribute("title", local + (zone ? " (" + zone + ")" : ""));
    });
    document.querySelectorAll("[data-local-zone]").forEach(function (z) {
      z.textContent = zone ? "your zone: " + zone : "";
    });
  }

  function refresh() {
    var regions = document.querySelectorAll("[data-live][id]");
    if (!regions.length || document.hidden) return;
    fetch(location.href, { credentials: "same-origin", headers: { "X-Sked-Live": "1" } })
      .then(function (r) {
        if (r.redirected || !r.ok) return null;
        return r.text();
      })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        regions.forEach(function (el) {
          var next = doc.getElementById(el.id);
          if (next && el.innerHTML !== next.innerHTML && !el.contains(document.activeElement)) {
            el.innerHTML = next.innerHTML;
            localTimes(el);
          }
        });
      })
      .catch(function () { /* offline for a moment: try again next tick */ });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    document.querySelectorAll("[data-theme-toggle]").forEach(function (b) {
      b.addEventListener("click", function () {
        var dark = root.getAttribute("data-theme") === "dark" ||
          (!root.getAttribute("data-theme") && window.matchMedia("(prefers-color-scheme: dark)").matches);
        var next = dark ? "light" : "dark";
        root.setAttribute("data-theme", next);
        try { localStorage.setItem("sked-theme", next); } catch (e) { /* storage off */ }
      });
    });
    // Delegated, so buttons that a live refresh brings in ask too.
    document.addEventListener("click", function (ev) {
      var b = ev.target.closest ? ev.target.closest("[data-confirm]") : null;
      if (!b || document.body.hasAttribute("data-no-confirm")) return;
      if (!window.confirm(b.getAttribute("data-confirm"))) ev.preventDefault();
    });
    var every = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
    if (every > 0) setInterval(refresh, every);
  });
})();
