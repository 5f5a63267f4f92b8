// Atlas pages: progressive enhancement only; every page works without this file.
document.addEventListener("DOMContentLoaded", function () {
  // ROI overlay toggle: the overlay is visible by default; the button appears only with JS.
  document.querySelectorAll("[data-roi-toggle]").forEach(function (button) {
    var overlay = document.getElementById(button.getAttribute("aria-controls"));
    if (!overlay) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      var show = overlay.hidden;
      overlay.hidden = !show;
      button.setAttribute("aria-pressed", String(show));
      button.textContent = show ? "Hide lesion boxes" : "Show lesion boxes";
    });
  });
});
