// Keeps an order's page current without a reload: the webshop sends the
// page's changing part, rendered and escaped on the server, whenever the
// order moves on (GET /orders/{id}/events). Without this script the page
// still shows the order as it was when loaded, and a reload shows the rest.
"use strict";
(function () {
  var live = document.getElementById("order-live");
  if (!live || !live.dataset.events || !window.EventSource) {
    return;
  }
  var source = new EventSource(live.dataset.events);
  source.addEventListener("order", function (event) {
    live.innerHTML = event.data;
    live.dataset.updated = String(Date.now());
  });
  source.addEventListener("done", function () {
    source.close();
  });
})();
