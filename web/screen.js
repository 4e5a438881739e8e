/* The community big screen: log in (a console account or a display key), then the panels.
   Everything comes from linlid's own HTTP API; nothing from outside (the node has no internet). */
"use strict";
(function () {
  const T = {
    zh: { title: "社区大屏", connected: "已连接", disconnected: "连接中断", logout: "退出",
          login: "登录", user: "账号", password: "密码", display: "显示屏接入", key: "显示屏密钥",
          connect: "接入", alarms: "活动告警", lang: "English", failed: "登录失败：",
          latest: "最新告警", type: "类型", severity: "级别", where: "位置", age: "持续", acked: "确认",
          sev: { critical: "紧急", major: "重要", minor: "次要", warning: "警告", indeterminate: "未定" },
          yes: "已确认", no: "未确认", s: "秒", m: "分", h: "小时" },
    en: { title: "Community screen", connected: "connected", disconnected: "disconnected",
          logout: "Log out", login: "Log in", user: "User", password: "Password",
          display: "Wall screen", key: "Display key", connect: "Connect", alarms: "Active alarms",
          lang: "中文", failed: "Login failed: ", latest: "Latest alarms", type: "Type",
          severity: "Severity", where: "Where", age: "Age", acked: "Acknowledged",
          sev: { critical: "critical", major: "major", minor: "minor", warning: "warning",
                 indeterminate: "indeterminate" },
          yes: "by", no: "no", s: "s", m: "min", h: "h" },
  };
  let lang = localStorage.getItem("linli.lang") || "zh";
  let csrf = null;
  let online = true;
  let panel = null;      /* the last alarms aggregate */
  let polling = 0;       /* the generation of the poll loop (a new login starts a new one) */
  let chart = null;
  const SEVS = ["critical", "major", "minor", "warning", "indeterminate"];
  const COLORS = { critical: "#ff4d4f", major: "#ff9c3a", minor: "#ffd666", warning: "#7fc4ff",
                   indeterminate: "#8aa4c4" };
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
    render();
  }

  function age(s) {
    const t = T[lang];
    return s < 60 ? s + t.s : s < 3600 ? Math.floor(s / 60) + t.m : Math.floor(s / 3600) + t.h;
  }

  function render() {
    if (!panel) return;
    const t = T[lang];
    $("alarms-total").textContent = panel.total;
    const body = $("alarms-list");
    body.replaceChildren();
    for (const a of panel.alarms) {
      const tr = document.createElement("tr");
      tr.dataset.id = a.id;
      const cells = [a.type, t.sev[a.severity] || a.severity, a.scope.split("/").pop(), age(a.age_s),
                     a.acknowledged ? (lang === "zh" ? (a.acknowledged_by || "") + " " + t.yes
                                                     : t.yes + " " + (a.acknowledged_by || "")) : t.no];
      cells.forEach((c, i) => {
        const td = document.createElement("td");
        td.textContent = c;
        if (i === 1) td.className = "sev-" + a.severity;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    }
    if (window.echarts) {
      if (!chart) chart = echarts.init($("alarms-chart"), null, { renderer: "canvas" });
      chart.setOption({
        animation: false,
        textStyle: { fontSize: 20, color: "#e6eef8" },
        legend: { bottom: 0, textStyle: { color: "#e6eef8", fontSize: 18 } },
        series: [{ type: "pie", radius: ["40%", "70%"], label: { color: "#e6eef8", fontSize: 18 },
                   data: SEVS.filter((s) => panel.by_severity[s]).map((s) => ({
                     name: t.sev[s], value: panel.by_severity[s], itemStyle: { color: COLORS[s] } })) }],
      }, true);
    }
  }

  /* The alarms panel, live: a long poll on the cursor; on any failure "disconnected", then again. */
  async function pollAlarms(gen) {
    let cursor = null;
    const ctl = new AbortController();
    pollAbort = ctl;
    while (gen === polling) {
      let r;
      try {
        r = await api("GET", "/screen/api/alarms" + (cursor === null ? "" : "?cursor=" + cursor),
                      undefined, ctl.signal);
      } catch (e) {
        r = null;
      }
      if (gen !== polling) return;
      if (r && r.status === 200) {
        panel = r.data;
        cursor = r.data.cursor;
        if (!online) { online = true; showConn(); }
        render();
        continue;
      }
      if (r && r.status === 401) { showLogin(); return; }
      online = false;
      showConn();
      cursor = null;
      await new Promise((ok) => setTimeout(ok, 2000));
    }
  }

  function showConn() {
    const c = $("conn");
    c.className = online ? "ok" : "bad";
    c.textContent = T[lang][online ? "connected" : "disconnected"];
  }

  let pollAbort = null;  /* ends the parked poll of a session that is over */

  async function api(method, path, body, signal) {
    const h = {};
    if (body !== undefined) h["Content-Type"] = "application/json";
    if (csrf && method !== "GET") h["X-Linli-CSRF"] = csrf;
    const r = await fetch(path, { method, headers: h, credentials: "same-origin", signal,
                                  body: body === undefined ? undefined : JSON.stringify(body) });
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    return { status: r.status, data };
  }

  function showBoard(s) {
    if (pollAbort) { pollAbort.abort(); pollAbort = null; }
    csrf = s.csrf;
    $("who").textContent = `${s.name} · ${s.scope}`;
    $("login").hidden = true;
    $("board").hidden = false;
    $("logout").hidden = false;
    document.body.dataset.state = "board";
    polling++;
    pollAlarms(polling);
  }

  function showLogin(msg) {
    polling++;
    if (pollAbort) { pollAbort.abort(); pollAbort = null; }
    panel = null;
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
