// Warns a minute before the server ends an idle session, keeps the compose
// draft across a time-out, and follows the server to the log-in page.
// Requests marked X-TMC-Background (polling) do not count as activity, on
// the server or here.
(function () {
  "use strict";
  var DRAFT_KEY = "tmc-compose-draft";
  var body = document.body;

  function saveDraft() {
    var form = document.querySelector("form.compose");
    if (!form) return;
    var draft = {};
    ["recipient", "body"].forEach(function (name) {
      if (form.elements[name]) draft[name] = form.elements[name].value;
    });
    sessionStorage.setItem(DRAFT_KEY, JSON.stringify(draft));
  }

  function restoreDraft() {
    var form = document.querySelector("form.compose");
    var saved = sessionStorage.getItem(DRAFT_KEY);
    if (!form || !saved) return;
    var draft = JSON.parse(saved);
    Object.keys(draft).forEach(function (name) {
      var field = form.elements[name];
      if (field && !field.value) {
        field.value = draft[name];
        field.dispatchEvent(new Event("input", { bubbles: true }));
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    restoreDraft();
    var compose = document.querySelector("form.compose");
    if (compose) {
      compose.addEventListener("input", saveDraft);
      compose.addEventListener("submit", function () {
        sessionStorage.removeItem(DRAFT_KEY);
      });
    }
    document.querySelectorAll("form[data-clears-drafts]").forEach(function (form) {
      form.addEventListener("submit", function () {
        sessionStorage.removeItem(DRAFT_KEY);
      });
    });

    var idle = Number(body.dataset.idleSeconds || 0);
    if (!idle) return;
    var warning = document.getElementById("idle-warning");
    var lastActivity = Date.now();

    function activity() {
      lastActivity = Date.now();
      warning.hidden = true;
    }

    body.addEventListener("htmx:afterRequest", function (event) {
      var headers = (event.detail.requestConfig || {}).headers || {};
      if (headers["X-TMC-Background"] !== "1") activity();
    });

    warning.querySelector("[data-keepalive]").addEventListener("click", function () {
      var token = JSON.parse(body.getAttribute("hx-headers"))["X-CSRFToken"];
      fetch(body.dataset.keepaliveUrl, {
        method: "POST",
        headers: { "X-CSRFToken": token },
        credentials: "same-origin",
      }).then(function (response) {
        if (response.ok) activity();
      });
    });

    setInterval(function () {
      var elapsed = (Date.now() - lastActivity) / 1000;
      if (elapsed >= idle) {
        saveDraft();
        var back = window.location.pathname + window.location.search;
        window.location.assign(
          body.dataset.loginUrl + "?next=" + encodeURIComponent(back)
        );
      } else if (elapsed >= idle - 60) {
        warning.hidden = false;
      }
    }, 1000);
  });
})();
