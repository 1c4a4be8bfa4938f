// The citizen simulator: sends through POST /sandbox/citizen/send (a signed webhook to ingest,
// as Zalo does) and polls GET /sandbox/citizen/conversation every second.
(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const citizen = $("phone-citizen");
  const oa = $("phone-oa");
  const text = $("phone-text");
  const list = $("phone-messages");
  const status = $("phone-status");
  const follow = $("phone-follow");
  const photo = $("phone-photo");
  const lat = $("phone-lat");
  const lon = $("phone-lon");
  const buttons = ["phone-send", "phone-sample-photo", "phone-location", "phone-follow"].map($);

  let following = false;
  let shownKey = null;
  let polling = false;

  const setStatus = (message, error = false) => {
    status.textContent = message;
    status.classList.toggle("error", error);
  };

  const who = () => {
    const option = citizen.selectedOptions[0];
    return { oa_id: oa.value, user_id: citizen.value, display_name: option?.dataset.name };
  };

  const newCitizen = () => {
    let id = "8";
    for (let i = 0; i < 18; i += 1) id += Math.floor(Math.random() * 10);
    const name = `Người dân mới ${id.slice(-4)}`;
    const option = new Option(name, id);
    option.dataset.name = name;
    citizen.add(option, citizen.querySelector('option[value="new"]'));
    citizen.value = id;
  };

  const reason = (body) => {
    if (typeof body?.detail === "string") return body.detail;
    if (Array.isArray(body?.detail)) return body.detail.map((d) => d.msg).join("; ");
    return "lỗi không rõ";
  };

  const coordinates = () => {
    const latitude = Number.parseFloat(lat.value);
    const longitude = Number.parseFloat(lon.value);
    const ok = Number.isFinite(latitude) && Number.isFinite(longitude)
      && Math.abs(latitude) <= 90 && Math.abs(longitude) <= 180;
    return ok ? { latitude, longitude } : null;
  };

  async function send(action, file = null) {
    const fields = { ...who(), ...action };
    let init;
    if (file) {
      const form = new FormData();
      for (const [key, value] of Object.entries(fields)) {
        if (value !== undefined && value !== null) form.append(key, String(value));
      }
      form.append("file", file);
      init = { method: "POST", body: form };
    } else {
      init = {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(fields),
      };
    }
    buttons.forEach((b) => { b.disabled = true; });
    setStatus("Đang gửi…");
    try {
      const response = await fetch("/sandbox/citizen/send", init);
      const body = await response.json().catch(() => ({}));
      if (!response.ok) {
        setStatus(`Không gửi được: ${reason(body)}`, true);
        return false;
      }
      if (body.webhook_status === 200) {
        setStatus("Đã gửi.");
      } else {
        const code = body.webhook_status ?? "không kết nối được";
        setStatus(`Hệ thống chưa nhận tin (${code}); Zalo sẽ tự gửi lại.`, true);
      }
      await refresh();
      return true;
    } catch {
      setStatus("Không kết nối được với sandbox.", true);
      return false;
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  const link = (href, content, className) => {
    const a = document.createElement("a");
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener";
    if (className) a.className = className;
    a.append(content);
    return a;
  };

  const picture = (src, alt) => {
    const img = document.createElement("img");
    img.src = src;
    img.alt = alt;
    img.loading = "lazy";
    return img;
  };

  const label = (content) => {
    const p = document.createElement("p");
    p.className = "label";
    p.textContent = content;
    return p;
  };

  function attachment(a) {
    switch (a.type) {
      case "image":
      case "gif":
        if (a.url) return link(a.url, picture(a.thumbnail || a.url, "Ảnh"));
        return label(`🖼️ Ảnh${a.filename ? ` ${a.filename}` : ""}`);
      case "video":
        return link(a.url, picture(a.thumbnail || "", "Video"), "video");
      case "file": {
        const name = a.name || a.filename || "Tệp đính kèm";
        const size = Number(a.size) ? ` · ${Math.max(1, Math.round(Number(a.size) / 1024))} KB` : "";
        return a.url ? link(a.url, `📄 ${name}${size}`) : label(`📄 ${name}${size}`);
      }
      case "location": {
        const where = `${a.latitude}, ${a.longitude}`;
        const map = `https://www.openstreetmap.org/?mlat=${a.latitude}&mlon=${a.longitude}#map=17/${a.latitude}/${a.longitude}`;
        return link(map, `📍 Vị trí: ${where}`);
      }
      case "article":
        return label(`📰 ${a.title || "Bài viết"}`);
      case "request_user_info":
        return label(`📋 Yêu cầu chia sẻ thông tin${a.title ? `: ${a.title}` : ""}`);
      default:
        return label("Tệp đính kèm");
    }
  }

  const clock = (ms) => new Date(ms).toLocaleTimeString("vi-VN", { hour: "2-digit", minute: "2-digit" });

  function item(message) {
    const li = document.createElement("li");
    li.className = `msg ${message.from === "oa" ? "from-oa" : "from-citizen"}`;
    li.dataset.id = message.id;
    li.dataset.time = clock(message.sent_at);
    for (const a of message.attachments || []) li.append(attachment(a));
    if (message.text) {
      const p = document.createElement("p");
      p.className = "text";
      p.textContent = message.text;
      li.append(p);
    }
    return li;
  }

  function render(data) {
    following = Boolean(data.user?.is_follower);
    follow.textContent = following ? "Đã quan tâm" : "Quan tâm";
    follow.title = following ? "Bấm để bỏ quan tâm" : "Bấm để quan tâm OA";
    follow.classList.toggle("on", following);
    follow.setAttribute("aria-pressed", String(following));
    $("phone-oa-name").textContent = data.oa?.name || oa.selectedOptions[0]?.textContent || "";
    const key = data.messages.map((m) => m.id).join(",");
    if (key === shownKey) return;
    shownKey = key;
    list.replaceChildren(...data.messages.map(item));
    $("phone-empty").hidden = data.messages.length > 0;
    const chat = list.parentElement;
    chat.scrollTop = chat.scrollHeight;
  }

  async function refresh() {
    if (polling || citizen.value === "new") return;
    polling = true;
    try {
      const query = new URLSearchParams({ oa: oa.value, user: citizen.value });
      const response = await fetch(`/sandbox/citizen/conversation?${query}`, { cache: "no-store" });
      if (response.ok) render(await response.json());
    } catch {
      // the sandbox restarts or stops: the next poll tries again
    } finally {
      polling = false;
    }
  }

  citizen.addEventListener("change", () => {
    if (citizen.value === "new") newCitizen();
    shownKey = null;
    setStatus("");
    refresh();
  });
  oa.addEventListener("change", () => {
    shownKey = null;
    setStatus("");
    refresh();
  });

  $("phone-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const content = text.value.trim();
    if (!content) return;
    if (await send({ kind: "text", text: content })) text.value = "";
    text.focus();
  });

  photo.addEventListener("change", async () => {
    const file = photo.files?.[0];
    if (!file) return;
    const kind = file.type.startsWith("image/") ? "image"
      : file.type.startsWith("video/") ? "video" : "file";
    await send({ kind }, file);
    photo.value = "";
  });

  $("phone-sample-photo").addEventListener("click", () => {
    send({ kind: "image", ...(coordinates() || {}) });
  });

  $("phone-location").addEventListener("click", () => {
    const where = coordinates();
    if (!where) {
      setStatus("Vĩ độ hoặc kinh độ không hợp lệ.", true);
      return;
    }
    send({ kind: "location", ...where });
  });

  follow.addEventListener("click", () => send({ kind: following ? "unfollow" : "follow" }));

  refresh();
  setInterval(refresh, 1000);
})();
