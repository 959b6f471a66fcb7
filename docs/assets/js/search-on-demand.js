// The search index (search/search_index.json) is fetched the first time a reader turns to search (focuses or
// clicks the search box, or presses one of Material's search keys), not on every page load: most readers of a
// page never search, and the index is the heaviest file of the site. Material requests the index (with an
// XMLHttpRequest) as soon as it starts; only that request is held back until then.
(function () {
  var start;
  var wanted = new Promise(function (resolve) { start = resolve; });
  function turnedToSearch(event) {
    var target = event.target;
    if (target && target.closest && target.closest(".md-search, label[for=__search]")) start();
  }
  document.addEventListener("focusin", turnedToSearch, true);
  document.addEventListener("pointerdown", turnedToSearch, true);
  document.addEventListener("keydown", function (event) {
    if (event.key === "/" || event.key === "s" || event.key === "f") start();  // Material's search shortcuts
  }, true);
  var open = XMLHttpRequest.prototype.open;
  var send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.open = function (method, url) {
    this.searchIndex = /\/search\/search_index\.json(\?|$)/.test(String(url));
    return open.apply(this, arguments);
  };
  XMLHttpRequest.prototype.send = function () {
    var request = this, args = arguments;
    if (!request.searchIndex) return send.apply(request, args);
    wanted.then(function () { send.apply(request, args); });
  };
})();
