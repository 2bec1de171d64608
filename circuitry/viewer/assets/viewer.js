/* circuitry's interactive circuit page (circuitry/viewer): draws one view of the page data with cytoscape.js.
   Every text from the data is written with textContent, never as HTML. */
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("circuitry-data").textContent);
  var KINDS = ["q", "k", "v", "out"];
  var NODE_WORDS = {
    patching_share: "share of the gap (activation patching)", patching_ci_low: "95% CI low",
    patching_ci_high: "95% CI high", patching_pvalue: "p", patching_pvalue_adjusted: "adjusted p (Holm)",
    prev_token_score: "previous-token score", induction_score: "induction score",
    duplicate_token_score: "duplicate-token score"
  };
  var view = null, cy = null, pinned = null;

  function $(id) { return document.getElementById(id); }
  function num(x) {
    if (x === null || x === undefined) { return "n/a"; }
    if (x !== 0 && (Math.abs(x) < 1e-3 || Math.abs(x) >= 1e4)) { return x.toExponential(2); }
    return x.toFixed(3);
  }
  function yesNo(x) { return x === null || x === undefined ? "n/a" : (x ? "yes" : "no"); }
  function isMlp(id) { return /^MLP\d+$/.test(id); }
  function nodeById(id) {
    for (var i = 0; i < view.nodes.length; i++) { if (view.nodes[i].id === id) { return view.nodes[i]; } }
    return null;
  }
  function receiver(id) {
    var n = nodeById(id);
    if (n && n.query_heads) {
      var heads = n.query_heads.split(",");
      return id + " (" + heads[0] + (heads.length > 1 ? "\u2013" + heads[heads.length - 1] : "") + ")";
    }
    return id;
  }

  function readFilters() {
    var f = { kinds: {}, mlp: $("f-mlp").checked, kept_only: $("f-kept").checked, isolated: $("f-isolated").checked };
    KINDS.forEach(function (k) { f.kinds[k] = $("f-kind-" + k).checked; });
    [["f-maxp", "max_p"], ["f-minshare", "min_share"]].forEach(function (pair) {
      var el = $(pair[0]), v = parseFloat(el.value);
      var ok = el.value.trim() !== "" && isFinite(v) && v >= 0;
      el.classList.toggle("invalid", !ok);
      f[pair[1]] = ok ? v : view.defaults[pair[1]];
    });
    return f;
  }

  /* The filter rule (tests/viewer computes the same from the graph file): a path is drawn when its kind is
     ticked, its adjusted p <= max p (a view without p-values, ACDC, ignores this), |share| >= min |share|,
     it is kept (when "kept circuit only"), and it touches no MLP node (when "MLP nodes" is off). */
  function passes(p, f) {
    if (!f.kinds[p.kind]) { return false; }
    if (f.kept_only && p.kept !== true) { return false; }
    if (view.alpha !== null && (p.pvalue_adjusted === null ? f.max_p < 1 : p.pvalue_adjusted > f.max_p)) { return false; }
    if (p.share === null ? f.min_share > 0 : Math.abs(p.share) < f.min_share) { return false; }
    if (!f.mlp && (isMlp(p.source) || isMlp(p.target))) { return false; }
    return true;
  }

  function nodeSize(n) {
    if (n.type === "embed" || n.type === "logits") { return 34; }
    var s = n.numbers.patching_share;
    return s === undefined ? 30 : 28 + 30 * Math.min(Math.abs(s), 1);
  }

  function draw() {
    var f = readFilters();
    var passing = view.paths.filter(function (p) { return passes(p, f); });
    passing.sort(function (a, b) { return Math.abs(b.share || 0) - Math.abs(a.share || 0); });
    var drawn = passing.slice(0, DATA.max_drawn);
    var keep = {};
    drawn.forEach(function (p) { keep[p.source] = true; keep[p.target] = true; });
    view.nodes.forEach(function (n) {
      if (f.isolated && (f.mlp || n.type !== "mlp")) { keep[n.id] = true; }
    });
    view.nodes.forEach(function (n) { if (keep[n.id] && n.parent) { keep[n.parent] = true; } });
    var els = [], pairs = {};
    view.nodes.forEach(function (n) {
      if (!keep[n.id]) { return; }
      var d = { id: n.id, label: n.type === "kv_group" ? receiver(n.id) : n.id, type: n.type,
                color: DATA.node_colors[n.type] || "#ccc", size: nodeSize(n) };
      if (n.parent && keep[n.parent]) { d.parent = n.parent; }
      els.push({ group: "nodes", data: d, position: { x: n.x, y: n.y }, classes: n.member ? "member" : "" });
    });
    drawn.forEach(function (p) {
      pairs[p.source + "\u0000" + p.target] = true;
      els.push({ group: "edges", classes: p.share !== null && p.share < 0 ? "negative" : "",
                 data: { id: p.id, source: p.source, target: p.target, kind: p.kind,
                         color: DATA.kind_colors[p.kind], width: 1 + 10 * Math.min(Math.abs(p.share || 0), 1) } });
    });
    cy.batch(function () { cy.elements().remove(); cy.add(els); });
    cy.fit(undefined, 30);
    $("count-nodes").textContent = String(cy.nodes().length);
    $("count-edges").textContent = String(cy.edges().length);
    $("count-pairs").textContent = String(Object.keys(pairs).length);
    $("count-total").textContent = String(view.paths.length);
    $("count-note").textContent = passing.length > drawn.length
      ? "The " + drawn.length + " largest |share| of the " + passing.length + " passing paths are drawn." : "";
    pinned = null;
    showDefault();
    document.body.setAttribute("data-drawn", String(Date.now()));
  }

  function table(rows) {
    var t = document.createElement("table");
    rows.forEach(function (r) {
      var tr = document.createElement("tr");
      r.forEach(function (cell) { var td = document.createElement("td"); td.textContent = cell; tr.appendChild(td); });
      t.appendChild(tr);
    });
    return t;
  }
  function showRows(title, rows) {
    var box = $("details");
    box.textContent = "";
    var h = document.createElement("h2");
    h.textContent = title;
    box.appendChild(h);
    box.appendChild(table(rows));
  }
  function showDefault() {
    var box = $("details");
    box.textContent = "";
    var p = document.createElement("p");
    p.textContent = "Hover or click a node or a path for its numbers.";
    box.appendChild(p);
  }
  function pathById(id) {
    for (var i = 0; i < view.paths.length; i++) { if (view.paths[i].id === id) { return view.paths[i]; } }
    return null;
  }
  function showPath(p) {
    var rows = [["kind", p.kind === "out" ? "out (reads the residual stream)" : p.kind.toUpperCase() + " input"],
                ["share of the gap", num(p.share)],
                ["95% CI", "[" + (p.ci_low === undefined ? "-inf" : num(p.ci_low)) + ", " +
                           (p.ci_high === undefined ? "inf" : num(p.ci_high)) + "]"],
                ["p", num(p.pvalue)], ["adjusted p", num(p.pvalue_adjusted)], ["test", view.test],
                ["significant (adjusted p \u2264 " + (view.alpha === null ? "n/a" : view.alpha) + ")", yesNo(p.significant)],
                ["matters (|share| \u2265 " + view.min_share + ")", yesNo(p.matters)]];
    if (view.has_kept) { rows.push(["kept in the circuit", yesNo(p.kept)]); }
    if (p.score !== undefined) { rows.push(["score (metric units)", num(p.score)]); }
    if (p.rank !== undefined) { rows.push(["rank by |score|", String(p.rank)]); }
    if (p.composition !== undefined) { rows.push(["composition score - baseline", num(p.composition)]); }
    showRows(p.source + " \u2192 " + receiver(p.target), rows);
  }
  function showNode(n) {
    var rows = [["type", n.type], ["layer", String(n.layer)]];
    if (n.query_heads) { rows.push(["query heads (one key/value group)", n.query_heads]); }
    Object.keys(n.numbers).forEach(function (k) { rows.push([NODE_WORDS[k] || k, num(n.numbers[k])]); });
    if (n.member) { rows.push(["circuit head", "yes"]); }
    showRows(n.type === "kv_group" ? receiver(n.id) : n.id, rows);
  }
  function show(target) {
    if (target.isNode()) { showNode(nodeById(target.id())); } else { showPath(pathById(target.id())); }
  }

  function setInputs(d, all) {
    $("f-maxp").value = String(all ? 1 : d.max_p);
    $("f-minshare").value = String(all ? 0 : d.min_share);
    KINDS.forEach(function (k) { $("f-kind-" + k).checked = true; });
    $("f-mlp").checked = true;
    $("f-kept").checked = all ? false : d.kept_only;
    $("f-isolated").checked = !!all;
  }

  function selectView(i) {
    view = DATA.views[i];
    $("kept-label").style.display = view.has_kept ? "" : "none";
    $("test").textContent = "Test: " + view.test + " (" + view.graph_file + ")";
    setInputs(view.defaults, false);
    draw();
  }

  function start() {
    if (!DATA.views.length) {
      $("controls").style.display = "none";
      $("cy").textContent = DATA.note;
      document.body.setAttribute("data-drawn", "none");
      return;
    }
    cy = cytoscape({
      container: $("cy"), layout: { name: "preset" }, minZoom: 0.05, maxZoom: 4,
      style: [
        { selector: "node", style: { "background-color": "data(color)", label: "data(label)", width: "data(size)",
          height: "data(size)", "font-size": 11, "text-valign": "center", "text-halign": "center",
          "border-width": 1, "border-color": "#666" } },
        { selector: "node[type = 'embed'], node[type = 'logits']", style: { shape: "round-rectangle", width: 60,
          color: "#fff" } },
        { selector: "node[type = 'mlp']", style: { shape: "rectangle" } },
        { selector: "node[type = 'kv_group']", style: { shape: "round-rectangle", "text-valign": "top" } },
        { selector: "node.member", style: { "border-width": 4, "border-color": "#111" } },
        { selector: ":parent", style: { shape: "round-rectangle", "background-opacity": 0.35, "border-style": "dashed",
          "text-valign": "top", "text-halign": "center", "padding": 10 } },
        { selector: "edge", style: { width: "data(width)", "line-color": "data(color)",
          "target-arrow-color": "data(color)", "target-arrow-shape": "triangle", "curve-style": "bezier",
          opacity: 0.75, "arrow-scale": 0.8 } },
        { selector: "edge.negative", style: { "line-style": "dashed" } },
        { selector: ".focus, :selected", style: { opacity: 1, "overlay-color": "#000", "overlay-opacity": 0.15 } }
      ]
    });
    window.circuitryGraph = cy;  // the drawn graph, for the browser console (and tests/viewer)
    cy.on("mouseover", "node, edge", function (e) { e.target.addClass("focus"); show(e.target); });
    cy.on("mouseout", "node, edge", function (e) {
      e.target.removeClass("focus");
      if (pinned && pinned.inside()) { show(pinned); } else { showDefault(); }
    });
    cy.on("tap", function (e) {
      pinned = e.target === cy ? null : e.target;
      if (pinned) { show(pinned); } else { showDefault(); }
    });
    ["f-maxp", "f-minshare"].forEach(function (id) { $(id).addEventListener("input", draw); });
    KINDS.map(function (k) { return "f-kind-" + k; }).concat(["f-mlp", "f-kept", "f-isolated"]).forEach(function (id) {
      $(id).addEventListener("change", draw);
    });
    $("f-reset").addEventListener("click", function () { setInputs(view.defaults, false); draw(); });
    $("f-all").addEventListener("click", function () { setInputs(view.defaults, true); draw(); });
    $("f-fit").addEventListener("click", function () { cy.fit(undefined, 30); });
    if ($("view-select")) {
      $("view-select").addEventListener("change", function (e) { selectView(parseInt(e.target.value, 10)); });
    }
    selectView(0);
  }

  start();
}());
