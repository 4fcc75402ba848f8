// Communication map: click an asset to highlight it, its lines and its peers; click elsewhere to clear.
// From the keyboard: Tab to an asset, Enter or Space highlights it (again: clears), Escape clears.
// The page works without this file; it only adds and removes the classes `hl` and `dim`.
(function () {
  "use strict";
  function clear(svg) {
    svg.querySelectorAll(".hl, .dim").forEach(function (el) { el.classList.remove("hl", "dim"); });
  }
  function highlight(svg, node) {
    clear(svg);
    var id = node.id, peers = {};
    peers[id] = true;
    svg.querySelectorAll(".link").forEach(function (line) {
      var a = line.getAttribute("data-a"), b = line.getAttribute("data-b");
      if (a === id || b === id) {
        line.classList.add("hl");
        peers[a] = true;
        peers[b] = true;
      } else {
        line.classList.add("dim");
      }
    });
    svg.querySelectorAll(".bundle").forEach(function (b) { b.classList.add("dim"); });
    svg.querySelectorAll(".node").forEach(function (n) { n.classList.add(peers[n.id] ? "hl" : "dim"); });
  }
  function toggle(svg, node) {
    if (node && !node.classList.contains("hl")) { highlight(svg, node); } else { clear(svg); }
  }
  document.querySelectorAll("svg.commmap").forEach(function (svg) {
    svg.addEventListener("click", function (event) {
      toggle(svg, event.target.closest ? event.target.closest(".node") : null);
    });
    svg.addEventListener("keydown", function (event) {
      var node = event.target.closest ? event.target.closest(".node") : null;
      if (event.key === "Escape") { clear(svg); return; }
      if (node && (event.key === "Enter" || event.key === " ")) {
        event.preventDefault();
        toggle(svg, node);
      }
    });
  });
})();
