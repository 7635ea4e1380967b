/* Roll Call: selecting roster rows for an action.
 *
 * Without scripts the checkboxes and "every row that matches" work as they are; this adds the
 * "select all rows on this page" checkbox and keeps the count of what is selected up to date in a
 * status region, which screen readers announce politely.
 */
(function () {
  "use strict";
  var form = document.getElementById("roster-actions");
  if (!form) { return; }
  var rows = Array.prototype.slice.call(form.querySelectorAll("input.row-select"));
  var pageOption = document.getElementById("select-page-option");
  var page = document.getElementById("select-page");
  var all = document.getElementById("all-matching");
  var count = document.getElementById("selected-count");

  function update() {
    var ticked = rows.filter(function (box) { return box.checked; }).length;
    page.checked = ticked > 0 && ticked === rows.length;
    page.indeterminate = ticked > 0 && ticked < rows.length;
    var text;
    if (all.checked) {
      text = "All " + all.getAttribute("data-total") + " rows that match the filters are selected, on every page.";
    } else if (ticked === 0) {
      text = "No rows selected.";
    } else {
      text = ticked + (ticked === 1 ? " row" : " rows") + " selected on this page.";
    }
    if (count.textContent !== text) { count.textContent = text; }
  }

  pageOption.hidden = false;
  page.addEventListener("change", function () {
    rows.forEach(function (box) { box.checked = page.checked; });
    update();
  });
  rows.forEach(function (box) { box.addEventListener("change", update); });
  all.addEventListener("change", update);
  update();
}());
