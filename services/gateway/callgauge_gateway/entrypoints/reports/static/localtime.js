/* Callgauge pages: every <time datetime="…"> (UTC, ISO 8601, as the server wrote it) is shown in
   the browser's own time zone; the UTC time stays in its title. No network requests (CSP). */
(function () {
  "use strict";
  var opts = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
               second: "2-digit", timeZoneName: "short" };
  var els = document.querySelectorAll("time[datetime]");
  for (var i = 0; i < els.length; i++) {
    var d = new Date(els[i].getAttribute("datetime"));
    if (isNaN(d.getTime())) continue;
    els[i].title = els[i].getAttribute("datetime") + " (UTC)";
    els[i].textContent = d.toLocaleString(undefined, opts);
    els[i].setAttribute("data-local", "true");
  }
}());
