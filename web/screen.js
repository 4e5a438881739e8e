/* The community big screen: log in (a console account or a display key), then the panels.
   Everything comes from linlid's own HTTP API; nothing from outside (the node has no internet). */
"use strict";
(function () {
  const T = {
    zh: { title: "社区大屏", connected: "已连接", disconnected: "连接中断", logout: "退出",
          login: "登录", user: "账号", password: "密码", display: "显示屏接入", key: "显示屏密钥",
          connect: "接入", alarms: "活动告警", soon: "告警数据将在下一步接入。", lang: "English",
          failed: "登录失败：" },
    en: { title: "Community screen", connected: "connected", disconnected: "disconnected",
          logout: "Log out", login: "Log in", user: "User", password: "Password",
          display: "Wall screen", key: "Display key", connect: "Connect", alarms: "Active alarms",
          soon: "Alarm data comes in the next step.", lang: "中文", failed: "Login failed: " },
  };
  let lang = localStorage.getItem("linli.lang") || "zh";
  let csrf = null;
  let online = true;
  const $ = (id) => document.getElementById(id);

  function applyLang() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.querySelectorAll("[data-i18n]").forEach((el) => {
      const k = el.getAttribute("data-i18n");
      if (k !== "connected") el.textContent = T[lang][k];
    });
    $("lang").textContent = T[lang].lang;
    document.title = T[lang].title + " · linli";
    showConn();
  }

  function showConn() {
    const c = $("conn");
    c.className = online ? "ok" : "bad";
    c.textContent = T[lang][online ? "connected" : "disconnected"];
  }

  async function api(method, path, body) {
    const h = {};
    if (body !== undefined) h["Content-Type"] = "application/json";
    if (csrf && method !== "GET") h["X-Linli-CSRF"] = csrf;
    const r = await fetch(path, { method, headers: h, credentials: "same-origin",
                                  body: body === undefined ? undefined : JSON.stringify(body) });
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    return { status: r.status, data };
  }

  function showBoard(s) {
    csrf = s.csrf;
    $("who").textContent = `${s.name} · ${s.scope}`;
    $("login").hidden = true;
    $("board").hidden = false;
    $("logout").hidden = false;
    document.body.dataset.state = "board";
  }

  function showLogin(msg) {
    csrf = null;
    $("who").textContent = "";
    $("board").hidden = true;
    $("login").hidden = false;
    $("logout").hidden = true;
    $("login-error").textContent = msg || "";
    document.body.dataset.state = "login";
  }

  async function start() {
    const r = await api("GET", "/screen/api/session");
    if (r.status === 200) showBoard(r.data); else showLogin();
  }

  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = e.target;
    const r = await api("POST", "/screen/api/login", { user: f.user.value, password: f.password.value });
    f.password.value = "";
    if (r.status === 200) showBoard(r.data);
    else showLogin(T[lang].failed + (r.data && r.data.error ? r.data.error.message : r.status));
  });

  $("display-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = e.target;
    const r = await api("POST", "/screen/api/display", { key: f.key.value });
    f.key.value = "";
    if (r.status === 200) showBoard(r.data);
    else showLogin(T[lang].failed + (r.data && r.data.error ? r.data.error.message : r.status));
  });

  $("logout").addEventListener("click", async () => {
    await api("POST", "/screen/api/logout");
    showLogin();
  });

  $("lang").addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    localStorage.setItem("linli.lang", lang);
    applyLang();
  });

  /* "disconnected" while the node does not answer; back by itself when it does. */
  async function heartbeat() {
    let ok = false;
    try {
      const r = await fetch("/api/v1/health", { cache: "no-store" });
      ok = r.ok;
    } catch (e) { ok = false; }
    if (ok !== online) {
      online = ok;
      showConn();
      if (ok) start();
    }
    setTimeout(heartbeat, 3000);
  }

  applyLang();
  start();
  heartbeat();
})();
