(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    var ths = table.querySelectorAll("thead th");
    var body = table.tBodies[0];
    Array.prototype.forEach.call(ths, function (th, col) {
      var btn = th.querySelector("button");
      if (!btn) return;
      btn.addEventListener("click", function () {
        var numeric = th.getAttribute("data-type") === "number";
        var current = th.getAttribute("aria-sort");
        // first press: numbers largest first, text A to Z; then alternate
        var dir = current ? (current === "ascending" ? "descending" : "ascending") : (numeric ? "descending" : "ascending");
        Array.prototype.forEach.call(ths, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", dir);
        var rows = Array.prototype.slice.call(body.rows).map(function (tr, i) {
          var v = tr.cells[col].getAttribute("data-sort") || "";
          return {tr: tr, i: i, v: numeric ? parseFloat(v) || 0 : v};
        });
        var sign = dir === "ascending" ? 1 : -1;
        rows.sort(function (a, b) {
          var c = numeric ? a.v - b.v : a.v.localeCompare(b.v, undefined, {numeric: true});
          return c !== 0 ? sign * c : a.i - b.i;
        });
        var frag = document.createDocumentFragment();
        rows.forEach(function (r) { frag.appendChild(r.tr); });
        body.appendChild(frag);
      });
    });
  });
})();
