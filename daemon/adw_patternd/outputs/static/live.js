// Live updates: ask the server once a second whether the database changed (one cheap
// query there); when it did, fetch this page again and swap its <main> in. No reload, no
// build step. Served from /static (the page's Content-Security-Policy allows only 'self').
(function () {
  "use strict";
  var busy = false;
  function state(text) {
    var el = document.getElementById("live-state");
    if (el) { el.setAttribute("data-state", text); }
  }
  function refresh(revision) {
    return fetch(window.location.href, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var main = fresh.getElementById("live");
        if (main) {
          document.getElementById("live").replaceWith(document.importNode(main, true));
          document.body.setAttribute("data-revision", fresh.body.getAttribute("data-revision") || revision);
          state("updated");
        }
      });
  }
  function poll() {
    if (busy) { return; }
    busy = true;
    fetch("/api/revision", {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (data) {
        if (data.revision !== document.body.getAttribute("data-revision")) { return refresh(data.revision); }
      })
      .then(function () { busy = false; }, function () { busy = false; state("offline"); });
  }
  window.setInterval(poll, 1000);
})();
