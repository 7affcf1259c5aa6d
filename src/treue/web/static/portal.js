/* Treue member portal: the printable card's print button, the invitation page's copy and share buttons (no inline script: CSP script-src 'self').
   Without JavaScript the buttons stay hidden and the link stays in a read-only field to copy by hand, next to
   the email and WhatsApp links, which work without it. */
(function () {
  "use strict";
  function say(text) {
    var status = document.querySelector("[data-share-status]");
    if (status) { status.textContent = text; }
  }
  function copyByHand(field) {
    field.focus();
    field.select();
    try { return document.execCommand("copy"); } catch (e) { return false; }
  }
  function setUp() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      var field = document.getElementById(button.getAttribute("data-copy"));
      if (!field) { return; }
      button.hidden = false;
      button.addEventListener("click", function () {
        var done = function () { button.setAttribute("data-done", "yes"); say(button.getAttribute("data-copied")); };
        var failed = function () { say(button.getAttribute("data-copy-failed")); };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(field.value).then(done, function () { if (copyByHand(field)) { done(); } else { failed(); } });
        } else if (copyByHand(field)) { done(); } else { failed(); }
      });
    });
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { window.print(); });
    });
    document.querySelectorAll("[data-share]").forEach(function (button) {
      if (typeof navigator.share !== "function") { return; }  // the email and WhatsApp links remain
      button.hidden = false;
      button.addEventListener("click", function () {
        var data = { title: button.getAttribute("data-share-title"), text: button.getAttribute("data-share-text") };
        navigator.share(data).catch(function () { /* the member closed the share sheet */ });
      });
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", setUp); } else { setUp(); }
})();
