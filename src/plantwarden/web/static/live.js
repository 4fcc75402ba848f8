// Live updates of the console (server-sent events from GET /live, see web/live.py): new alerts
// are counted in the top bar and added to the top of the Alerts page's table; a changed alert's
// row on that page is marked. Without JavaScript the pages work as before (reload them).
(function () {
  "use strict";
  var badge = document.getElementById("live-alerts");
  if (!badge || !window.EventSource) {
    return;
  }
  var fresh = 0;
  var table = document.querySelector("table[data-live-alerts] tbody");

  function cell(row, text, className) {
    var td = document.createElement("td");
    if (className) {
      var span = document.createElement("span");
      span.className = className;
      span.textContent = text;
      td.appendChild(span);
    } else {
      td.textContent = text;
    }
    row.appendChild(td);
    return td;
  }

  function addRow(alert) {
    var row = document.createElement("tr");
    row.className = "live-new";
    row.dataset.alertId = alert.alert_id;
    cell(row, alert.at.replace("T", " ").slice(0, 19));
    cell(row, alert.severity || "", "severity severity-" + (alert.severity || ""));
    cell(row, "");
    cell(row, "new");
    cell(row, "-");
    cell(row, "1");
    var title = cell(row, "");
    var link = document.createElement("a");
    link.href = "/alerts/" + encodeURIComponent(alert.alert_id);
    link.textContent = alert.title || alert.alert_id;
    title.appendChild(link);
    cell(row, alert.site || "");
    cell(row, alert.rule_id || "");
    cell(row, "");
    var empty = table.querySelector("tr.empty-row");
    if (empty) {
      empty.remove();
    }
    table.insertBefore(row, table.firstChild);
  }

  function mark(alert) {
    var rows = table ? table.querySelectorAll("tr") : [];
    for (var i = 0; i < rows.length; i++) {
      var link = rows[i].querySelector("a[href='/alerts/" + alert.alert_id + "']");
      if (link) {
        rows[i].classList.add("live-changed");
        rows[i].title = alert.type + (alert.by ? " by " + alert.by : "") + ": reload for the details";
      }
    }
  }

  // from the events this page was rendered with: nothing raised since is missed
  var after = badge.dataset.after;
  var source = new EventSource("/live" + (after ? "?after=" + encodeURIComponent(after) : ""));
  source.addEventListener("alert", function (message) {
    var alert = JSON.parse(message.data);
    if (alert.type === "AlertRaised") {
      fresh += 1;
      badge.textContent = fresh + " new alert" + (fresh === 1 ? "" : "s");
      badge.hidden = false;
      if (table) {
        addRow(alert);
      }
    } else if (table) {
      mark(alert);
    }
  });
  source.onerror = function () {
    badge.classList.add("live-offline");
  };
  source.onopen = function () {
    badge.classList.remove("live-offline");
  };
})();
