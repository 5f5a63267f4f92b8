// Review queue keyboard: j/k move between images, x selects one for a batch, a approves,
// r focuses the reason (Enter there rejects), Esc leaves it. Without a selection, a and the
// reason's Enter act on the highlighted image. The page works without this script.
(function () {
  "use strict";
  function start() {
    var form = document.querySelector("[data-review-form]");
    if (!form) return;
    var reason = document.getElementById("review-reason");
    var current = 0;
    function cards() { return Array.prototype.slice.call(form.querySelectorAll("[data-review-card]")); }
    function highlight(index) {
      var all = cards();
      if (!all.length) return;
      current = Math.max(0, Math.min(all.length - 1, index));
      all.forEach(function (card, i) {
        card.classList.toggle("is-current", i === current);
        if (i === current) card.setAttribute("aria-current", "true"); else card.removeAttribute("aria-current");
      });
      all[current].focus({ preventScroll: true });
      all[current].scrollIntoView({ block: "nearest" });
    }
    function box(card) { return card.querySelector("[data-review-select]"); }
    function decide(decision) {
      if (!form.querySelector("[data-review-select]:checked")) {
        var card = cards()[current];
        if (!card) return;
        box(card).checked = true;
      }
      var button = form.querySelector('[data-batch="' + decision + '"]');
      if (form.requestSubmit) form.requestSubmit(button); else button.click();
    }
    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.target === reason) {
        if (event.key === "Enter") { event.preventDefault(); decide("reject"); }
        else if (event.key === "Escape") { event.preventDefault(); reason.blur(); highlight(current); }
        return;
      }
      if (event.target.matches && event.target.matches("input, textarea, select")) return;
      switch (event.key) {
        case "j": highlight(current + 1); break;
        case "k": highlight(current - 1); break;
        case "x": var b = box(cards()[current]); if (b) b.checked = !b.checked; break;
        case "a": decide("approve"); break;
        case "r": reason.focus(); break;
        default: return;
      }
      event.preventDefault();
    });
    cards().forEach(function (card, i) { card.addEventListener("click", function () { current = i; highlight(i); }); });
    highlight(0);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
