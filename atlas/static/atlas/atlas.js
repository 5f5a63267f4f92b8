// Atlas pages: progressive enhancement only; every page works without this file.
(function () {
  "use strict";

  function norm(text) {
    return (text || "").toLowerCase().normalize("NFD").replace(/[\u0300-\u036f]/g, "").replace(/\s+/g, " ").trim();
  }

  // ROI overlay toggle: the overlay is visible by default; the button appears only with JS.
  function setupRoiToggle(button) {
    var overlay = document.getElementById(button.getAttribute("aria-controls"));
    if (!overlay) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      var show = overlay.hidden;
      overlay.hidden = !show;
      // One fixed label; the pressed state says whether the boxes are shown (WAI-ARIA toggle button).
      button.setAttribute("aria-pressed", String(show));
    });
  }

  // Condition typeahead (WAI-ARIA combobox with a listbox popup). Without JS the input keeps its
  // <datalist>; either way the server accepts a name, a slug or a synonym ("ringworm" -> Tinea).
  var MAX_SUGGESTIONS = 8;

  function setupCombobox(input) {
    var source = document.getElementById(input.getAttribute("data-conditions"));
    if (!source) return;
    var conditions = JSON.parse(source.textContent);
    var listId = input.id + "-listbox";
    var list = document.createElement("ul");
    list.id = listId;
    list.className = "combo-list";
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", "Matching conditions");
    list.hidden = true;
    input.insertAdjacentElement("afterend", list);
    var status = document.createElement("p");
    status.className = "vh";
    status.setAttribute("role", "status");
    input.parentNode.appendChild(status);

    input.removeAttribute("list");
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", listId);

    var shown = [];
    var active = -1;

    function matches(text) {
      var wanted = norm(text);
      var found = [];
      conditions.forEach(function (c) {
        var name = norm(c.name);
        if (!wanted || name.indexOf(wanted) !== -1 || c.slug.indexOf(wanted) !== -1) {
          found.push({ condition: c, via: "", rank: !wanted || name.indexOf(wanted) === 0 ? 0 : 1 });
          return;
        }
        for (var i = 0; i < c.synonyms.length; i++) {
          var synonym = norm(c.synonyms[i]);
          if (synonym.indexOf(wanted) !== -1) {
            found.push({ condition: c, via: c.synonyms[i], rank: synonym.indexOf(wanted) === 0 ? 2 : 3 });
            return;
          }
        }
      });
      found.sort(function (a, b) { return a.rank - b.rank || a.condition.name.localeCompare(b.condition.name); });
      return wanted ? found.slice(0, MAX_SUGGESTIONS) : found;
    }

    function setOpen(open) {
      list.hidden = !open;
      input.setAttribute("aria-expanded", String(open));
      if (!open) {
        active = -1;
        input.removeAttribute("aria-activedescendant");
      }
    }

    function render(items) {
      list.textContent = "";
      shown = items;
      active = -1;
      items.forEach(function (item, index) {
        var option = document.createElement("li");
        option.id = listId + "-" + index;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        option.textContent = item.condition.name;
        if (item.via) {
          var via = document.createElement("span");
          via.className = "combo-via";
          via.textContent = " \u2014 " + item.via;
          option.appendChild(via);
        }
        // mousedown, not click: the input must not lose focus (and close the list) first.
        option.addEventListener("mousedown", function (event) {
          event.preventDefault();
          choose(index);
        });
        list.appendChild(option);
      });
      setOpen(items.length > 0);
      status.textContent = items.length
        ? items.length + (items.length === 1 ? " condition matches" : " conditions match") + "; use the up and down arrows to choose."
        : "No condition matches.";
    }

    function highlight(index) {
      var options = list.querySelectorAll("[role=option]");
      if (!options.length) return;
      active = (index + options.length) % options.length;
      options.forEach(function (option, i) { option.setAttribute("aria-selected", String(i === active)); });
      input.setAttribute("aria-activedescendant", options[active].id);
      options[active].scrollIntoView({ block: "nearest" });
    }

    function choose(index) {
      var item = shown[index];
      if (!item) return;
      input.value = item.condition.name;
      setOpen(false);
      status.textContent = item.condition.name + " chosen.";
    }

    input.addEventListener("input", function () { render(input.value ? matches(input.value) : []); });
    input.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        if (list.hidden) render(matches(input.value));
        highlight(active === -1 ? (event.key === "ArrowDown" ? 0 : -1) : active + (event.key === "ArrowDown" ? 1 : -1));
        event.preventDefault();
      } else if (event.key === "Enter" && !list.hidden && active >= 0) {
        event.preventDefault(); // choose, do not submit yet
        choose(active);
      } else if (event.key === "Escape" && !list.hidden) {
        event.preventDefault();
        setOpen(false);
      }
    });
    input.addEventListener("blur", function () { setOpen(false); });
  }

  // The photo form posts the filters chosen in the search form above it, as they are now.
  function setupPhotoForm(form) {
    var filters = document.querySelector("[data-search-form]");
    if (!filters) return;
    form.addEventListener("submit", function () {
      form.querySelectorAll("[data-mirror]").forEach(function (old) { old.remove(); });
      function mirror(name, value) {
        var hidden = document.createElement("input");
        hidden.type = "hidden";
        hidden.name = name;
        hidden.value = value;
        hidden.setAttribute("data-mirror", name);
        form.appendChild(hidden);
      }
      mirror("condition", filters.elements.condition.value);
      filters.querySelectorAll("input[name=fitzpatrick]:checked").forEach(function (box) { mirror("fitzpatrick", box.value); });
      var origin = filters.querySelector("input[name=origin]:checked");
      mirror("origin", origin ? origin.value : "");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-roi-toggle]").forEach(setupRoiToggle);
    document.querySelectorAll("input[data-conditions]").forEach(setupCombobox);
    document.querySelectorAll("[data-photo-form]").forEach(setupPhotoForm);
  });
})();
