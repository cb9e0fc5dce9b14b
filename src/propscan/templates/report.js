(function () {
  "use strict";
  var TECH = JSON.parse(document.getElementById("ps-techniques").textContent);
  var tip = document.getElementById("ps-tip");
  var reduceMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  var hideTimer = null;
  var tipState = null; // {report, ids, anchor}

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text; // text only: never innerHTML
    return e;
  }

  // a mark carries every span on its text range: data-i="3 7"
  function idsOf(mark) {
    return mark.getAttribute("data-i").split(" ").map(Number);
  }

  function fillTip(report, ids) {
    tip.textContent = "";
    ids.forEach(function (i) {
      var s = report.spans[i], t = TECH[s[0]];
      var item = el("div", "item t" + s[0]);
      var head = el("div", "head");
      var dot = el("span", "dot");
      dot.setAttribute("aria-hidden", "true");
      head.appendChild(dot);
      head.appendChild(el("span", "name", t[0]));
      head.appendChild(el("span", "conf", "confidence " + s[1].toFixed(2)));
      item.appendChild(head);
      item.appendChild(el("p", "def", t[1]));
      item.appendChild(el("p", "ex", "Example: \u201c" + t[2] + "\u201d"));
      if (s[2] && s[2].length) {
        item.appendChild(el("p", "alt", "Also considered: " + s[2].map(function (a) {
          return TECH[a[0]][0] + " " + a[1].toFixed(2);
        }).join(", ")));
      }
      if (s[3] && s[3].length) {
        // the words that carried the label, shaded by the model's token probability
        var ev = el("p", "ev", "Words behind it: ");
        s[3].forEach(function (w, k) {
          var word = el("span", "w", w[0]);
          word.style.setProperty("--w", String(w[1]));
          word.title = "token probability " + w[1].toFixed(2);
          if (k) ev.appendChild(document.createTextNode(" "));
          ev.appendChild(word);
        });
        item.appendChild(ev);
      }
      tip.appendChild(item);
    });
  }

  function placeTip(anchor) {
    var rects = anchor.getClientRects();
    var r = rects.length ? rects[0] : anchor.getBoundingClientRect();
    var docEl = document.documentElement;
    var sx = window.pageXOffset, sy = window.pageYOffset;
    var w = tip.offsetWidth, h = tip.offsetHeight;
    var left = Math.max(sx + 8, Math.min(r.left + sx, sx + docEl.clientWidth - w - 8));
    var top = r.bottom + sy + 10;
    if (r.bottom + h + 10 > window.innerHeight && r.top - h - 10 > 0) top = r.top + sy - h - 10;
    tip.style.left = left + "px";
    tip.style.top = top + "px";
  }

  function setCurrent(on) {
    if (!tipState) return;
    tipState.ids.forEach(function (i) {
      (tipState.report.frags[i] || []).forEach(function (f) { f.classList.toggle("cur", on); });
    });
  }

  function showTip(report, ids, anchor) {
    clearTimeout(hideTimer);
    setCurrent(false);
    tipState = {report: report, ids: ids, anchor: anchor};
    fillTip(report, ids);
    tip.hidden = false;
    placeTip(anchor);
    setCurrent(true);
  }

  function hideTip() {
    clearTimeout(hideTimer);
    setCurrent(false);
    tipState = null;
    tip.hidden = true;
  }

  function hideSoon() {
    clearTimeout(hideTimer);
    hideTimer = setTimeout(hideTip, 200);
  }

  tip.addEventListener("mouseenter", function () { clearTimeout(hideTimer); });
  tip.addEventListener("mouseleave", hideSoon);
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && tipState) hideTip();
  });

  function Report(root) {
    var self = this;
    var rid = root.getAttribute("data-rid");
    var art = root.querySelector(".ps-article");
    var spans = JSON.parse(root.querySelector("script.ps-spans").textContent).spans;
    var frags = [], heads = [], low = [], byTech = {};
    var list = art.querySelectorAll("mark.sp");
    for (var n = 0; n < list.length; n++) {
      idsOf(list[n]).forEach(function (i) {
        var f = list[n];
        (frags[i] || (frags[i] = [])).push(f);
        if (f.hasAttribute("data-h")) heads[i] = f;
      });
    }
    spans.forEach(function (s, i) {
      (byTech[s[0]] || (byTech[s[0]] = [])).push(i);
      low[i] = false;
    });
    var off = {};
    var min = 0;
    this.spans = spans;
    this.frags = frags;

    function visible(i) { return !off[spans[i][0]] && !low[i]; }
    this.visible = visible;

    function syncHead(i) {
      if (heads[i]) heads[i].tabIndex = idsOf(heads[i]).some(visible) ? 0 : -1;
    }

    var showRemoved = root.querySelector(".show-rm");
    if (showRemoved) {
      showRemoved.addEventListener("change", function () { art.classList.toggle("hide-rm", !showRemoved.checked); });
    }

    var buttons = root.querySelectorAll(".lg");
    var status = root.querySelector(".filter .status");
    function updateCounts() {
      var shown = 0;
      Array.prototype.forEach.call(buttons, function (b) {
        var t = +b.getAttribute("data-t"), ids = byTech[t] || [], k = 0;
        ids.forEach(function (i) { if (!low[i]) k++; });
        var nEl = b.querySelector(".n");
        nEl.textContent = k === ids.length ? String(ids.length) : k + "/" + ids.length;
        if (!off[t]) shown += k;
      });
      if (status) status.textContent = shown + " of " + spans.length + " technique labels shown";
    }

    Array.prototype.forEach.call(buttons, function (b) {
      b.addEventListener("click", function () {
        var t = +b.getAttribute("data-t");
        off[t] = !off[t];
        art.classList.toggle("off-t" + t, off[t]);
        b.setAttribute("aria-pressed", off[t] ? "false" : "true");
        (byTech[t] || []).forEach(syncHead);
        if (tipState && tipState.report === self && !tipState.ids.some(visible)) hideTip();
        updateCounts();
      });
    });

    var slider = root.querySelector("input.min");
    var out = root.querySelector("output.minv");
    var pending = false;
    function applyMin() {
      pending = false;
      min = parseFloat(slider.value) || 0;
      out.textContent = min.toFixed(2);
      for (var i = 0; i < spans.length; i++) {
        var lo = spans[i][1] < min;
        if (lo !== low[i]) {
          low[i] = lo;
          // a shared mark fades only when every span on it is below the minimum
          (frags[i] || []).forEach(function (f) { f.classList.toggle("lo", idsOf(f).every(function (j) { return low[j]; })); });
          syncHead(i);
        }
      }
      if (tipState && tipState.report === self && !tipState.ids.some(visible)) hideTip();
      updateCounts();
    }
    if (slider) {
      slider.addEventListener("input", function () {
        if (!pending) { pending = true; window.requestAnimationFrame(applyMin); }
      });
      slider.addEventListener("change", applyMin);
    }

    // hover: every visible span under the pointer (innermost first); focus: the focused span
    art.addEventListener("mouseover", function (e) {
      var m = e.target.closest ? e.target.closest("mark.sp") : null;
      if (!m || !art.contains(m)) return;
      var ids = [];
      for (var x = m; x && x !== art; x = x.parentElement) {
        if (x.matches("mark.sp")) {
          idsOf(x).forEach(function (i) {
            if (visible(i) && ids.indexOf(i) < 0) ids.push(i);
          });
        }
      }
      if (ids.length) showTip(self, ids, m);
    });
    art.addEventListener("mouseout", function (e) {
      var to = e.relatedTarget;
      if (to && (tip.contains(to) || (to.closest && to.closest("mark.sp") && art.contains(to)))) return;
      if (tipState && tipState.report === self) hideSoon();
    });
    art.addEventListener("focusin", function (e) {
      var m = e.target;
      if (m.matches && m.matches("mark.sp[data-h]")) {
        var shown = idsOf(m).filter(visible);
        if (shown.length) showTip(self, shown, m);
      }
    });
    art.addEventListener("focusout", function () {
      if (tipState && tipState.report === self) hideTip();
    });

    // sentence strip: go to the sentence(s) and mark them
    var strip = root.querySelector(".strip");
    if (strip) {
      var cells = strip.querySelectorAll(".cell");
      strip.addEventListener("click", function (e) {
        var c = e.target.closest ? e.target.closest(".cell") : null;
        if (!c) return;
        e.preventDefault();
        goTo(+c.getAttribute("data-k"));
      });
      strip.addEventListener("keydown", function (e) {
        var c = e.target.closest ? e.target.closest(".cell") : null;
        if (!c) return;
        var k = +c.getAttribute("data-k"), to = null;
        if (e.key === "ArrowRight" || e.key === "ArrowDown") to = Math.min(k + 1, cells.length - 1);
        else if (e.key === "ArrowLeft" || e.key === "ArrowUp") to = Math.max(k - 1, 0);
        else if (e.key === "Home") to = 0;
        else if (e.key === "End") to = cells.length - 1;
        if (to === null) return;
        e.preventDefault();
        c.tabIndex = -1;
        cells[to].tabIndex = 0;
        cells[to].focus();
      });
    }

    function goTo(k) {
      var a = document.getElementById(rid + "-s" + k), b = document.getElementById(rid + "-e" + k);
      if (!a) return;
      if (b) {
        var range = document.createRange();
        range.setStartAfter(a);
        range.setEndBefore(b);
        if (window.CSS && CSS.highlights && window.Highlight) {
          CSS.highlights.set("ps-sentence", new Highlight(range));
        } else {
          var sel = window.getSelection();
          sel.removeAllRanges();
          sel.addRange(range);
        }
      }
      a.scrollIntoView({block: "center", behavior: reduceMotion ? "auto" : "smooth"});
      a.focus({preventScroll: true});
    }
  }

  Array.prototype.forEach.call(document.querySelectorAll("section.report"), function (root) {
    new Report(root);
  });

  // Shown in propscan's web page (a sandboxed frame, no same-origin access): tell the page how tall
  // the report is, so the frame grows to it instead of scrolling inside a fixed height.
  if (window.parent !== window) {
    var told = 0;
    var tell = function () {
      var h = document.documentElement.scrollHeight;
      if (h !== told) {
        told = h;
        window.parent.postMessage({propscanReportHeight: h}, "*");
      }
    };
    window.addEventListener("load", tell);
    window.addEventListener("resize", tell);
    if (window.ResizeObserver) new ResizeObserver(tell).observe(document.body);
    tell();
  }
})();
