/* An offer's reveal button: writes its iframe where this script tag stands. */
(function () {
  "use strict";
  var src = "{{ src|escapejs }}";
  var script = document.currentScript ||
    document.querySelector('script[src*="/{{ token|escapejs }}/embed.js"]');
  if (!script || !script.parentNode) { return; }
  var frame = document.createElement("iframe");
  frame.src = src;
  frame.title = "{{ title|escapejs }}";
  frame.width = "100%";
  frame.height = "300";
  frame.loading = "lazy";
  frame.setAttribute("frameborder", "0");
  frame.style.border = "0";
  frame.style.maxWidth = "460px";
  frame.style.display = "block";
  script.parentNode.insertBefore(frame, script.nextSibling);
  var origin = new URL(src).origin;
  window.addEventListener("message", function (event) {
    // Only our frame may resize itself, and only to a sane height.
    if (event.origin !== origin || event.source !== frame.contentWindow) { return; }
    var height = event.data && event.data.couponEmbedHeight;
    if (typeof height === "number" && height > 0 && height < 4000) {
      frame.height = String(Math.ceil(height));
    }
  });
})();
