// The support console's only script (no inline script: the
// Content-Security-Policy allows none). The replay slider names the event
// under it while it moves and shows the replay when it is let go; without
// this script the form's Show button does the same.
"use strict";
document.documentElement.classList.add("js");
document.addEventListener("DOMContentLoaded", function () {
  var slider = document.getElementById("at");
  if (!slider) return;
  var out = document.getElementById("at-label");
  var list = document.getElementById(slider.dataset.labels);
  var labels = list ? Array.prototype.map.call(list.children, function (li) { return li.textContent; }) : [];
  slider.addEventListener("input", function () {
    var l = labels[Number(slider.value) - 1];
    if (out && l) out.textContent = l;
  });
  slider.addEventListener("change", function () { slider.form.submit(); });
});
