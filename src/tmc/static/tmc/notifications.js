// Desktop pop-ups for new notices, for people who chose them and allowed
// them in this browser. The bell (polled in the background by htmx) lists
// unread notices marked for the desktop; each is shown once per browser.
(function () {
  "use strict";
  var SEEN_KEY = "tmc.notifications.seen";

  function seen() {
    try {
      return JSON.parse(localStorage.getItem(SEEN_KEY) || "[]");
    } catch (error) {
      return [];
    }
  }

  function remember(ids) {
    try {
      localStorage.setItem(SEEN_KEY, JSON.stringify(ids.slice(-200)));
    } catch (error) {
      // Private windows may refuse storage; pop-ups may then repeat.
    }
  }

  function showDesktopNotices(root) {
    if (!("Notification" in window) || Notification.permission !== "granted") {
      return;
    }
    var list = root.querySelector("[data-desktop-notices]");
    if (!list) return;
    var shown = seen();
    var inbox = root.querySelector("a");
    list.querySelectorAll("li[data-id]").forEach(function (item) {
      var id = item.getAttribute("data-id");
      if (shown.indexOf(id) !== -1) return;
      var popup = new Notification("TMC", { body: item.textContent, tag: "tmc-" + id });
      popup.onclick = function () {
        window.focus();
        if (inbox) window.location.href = inbox.href;
      };
      shown.push(id);
    });
    remember(shown);
  }

  function setUpPermissionButton() {
    var button = document.querySelector("[data-desktop-permission]");
    var state = document.querySelector("[data-desktop-permission-state]");
    if (!button || !state) return;
    if (!("Notification" in window)) {
      state.textContent = "This browser cannot show desktop pop-ups.";
      return;
    }
    function describe() {
      if (Notification.permission === "granted") {
        state.textContent = "Desktop pop-ups are allowed in this browser.";
        button.hidden = true;
      } else if (Notification.permission === "denied") {
        state.textContent =
          "This browser blocks pop-ups from TMC; allow them in its site settings.";
        button.hidden = true;
      } else {
        button.hidden = false;
      }
    }
    button.addEventListener("click", function () {
      Notification.requestPermission().then(describe);
    });
    describe();
  }

  document.addEventListener("DOMContentLoaded", setUpPermissionButton);
  // Whatever was swapped, the bell may have changed; shown ones are skipped.
  document.addEventListener("htmx:afterSettle", function () {
    var bell = document.getElementById("bell");
    if (bell) showDesktopNotices(bell);
  });
})();
