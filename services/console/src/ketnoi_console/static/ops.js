// Operators' dashboard: re-render the live part of /ops every few seconds (the server computes
// the numbers; the produce rate is the change of log-end offsets between two refreshes).
(function () {
  "use strict";
  const live = document.getElementById("ops-live");
  if (!live) return;
  const every = Math.max(2, Number(live.dataset.refreshS) || 5) * 1000;
  const stamp = document.getElementById("ops-updated");
  let busy = false;

  function mark(text) { if (stamp) stamp.textContent = text; }

  async function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const res = await fetch(live.dataset.liveUrl, { credentials: "same-origin", headers: { "Accept": "text/html" } });
      if (res.ok) {
        live.innerHTML = await res.text();
        mark("Cập nhật lúc " + new Date().toLocaleTimeString("vi-VN", { timeZone: "Asia/Ho_Chi_Minh" }));
      } else if (res.status === 401 || res.status === 403) {
        mark("Phiên làm việc đã hết, hãy tải lại trang.");
      } else {
        mark("Không cập nhật được (" + res.status + ").");
      }
    } catch (e) {
      mark("Mất kết nối tới máy chủ.");
    } finally {
      busy = false;
    }
  }

  setInterval(refresh, every);
  setTimeout(refresh, 2500);  // a second sample soon (2 s apart at least), for the rate
})();
