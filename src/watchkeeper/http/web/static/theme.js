// Applied before the page paints, so a chosen theme never flashes the other one first.
(function () {
  var theme = localStorage.getItem("wk-theme");
  if (theme === "dark" || theme === "light") document.documentElement.dataset.theme = theme;
})();
