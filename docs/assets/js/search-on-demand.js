// Search loads the first time a reader turns to it (focuses or clicks the search box, or presses one of
// Material's search keys), not with every page: most readers of a page never search, and the index is the
// heaviest file of the site. Material starts its search worker and requests the index (an XMLHttpRequest) as
// soon as it starts; both are held back until then, and nothing else is touched.
(function () {
  var start;
  var wanted = new Promise(function (resolve) { start = resolve; });
  function turnedToSearch(event) {
    var target = event.target;
    if (target && target.closest && target.closest(".md-search, label[for=__search]")) start();
  }
  document.addEventListener("DOMContentLoaded", function () {  // the search dialog gets a name
    var dialog = document.querySelector(".md-search[role=dialog]");
    if (dialog && !dialog.hasAttribute("aria-label")) dialog.setAttribute("aria-label", "Search");
  });
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
  // The worker: a stand-in that queues Material's messages and starts the real worker on first use.
  var Worker = window.Worker;
  window.Worker = function (url, options) {
    if (!/\/workers\/search\.[^/]*\.js/.test(String(url))) return new Worker(url, options);
    var standIn = new EventTarget(), queue = [], worker = null;
    standIn.postMessage = function (message) { worker ? worker.postMessage(message) : queue.push(message); };
    standIn.terminate = function () { if (worker) worker.terminate(); };
    wanted.then(function () {
      worker = new Worker(url, options);
      worker.addEventListener("message", function (event) {
        standIn.dispatchEvent(new MessageEvent("message", { data: event.data }));
      });
      queue.forEach(function (message) { worker.postMessage(message); });
      queue = [];
    });
    return standIn;
  };
})();
