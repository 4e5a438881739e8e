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
          yes: "已确认", no: "未确认", s: "秒", m: "分", h: "小时",
          grid: "网格事件", grid_note: "今日 · 本月", open: "在办", overdue: "超期",
          reported_today: "今日上报", closed_today: "今日结案", close_rate: "结案率",
          on_time_rate: "按期结案率", grid_col: "网格",
          stage: { intake: "受理", respond: "派遣待接", process: "处置", check: "核查", shelved: "挂账" },
          devices: "设备状态", online_rate: "在线率", online_total: "在线 / 总数",
          refused_today: "今日拒收读数", unavailable: "离线设备",
          services: "政务服务", svc_today: "今日申请", svc_open: "在办", svc_on_time: "按时办结",
          svc_late: "超时办结",
          status: { submitted: "已提交", accepted: "已受理", rejected: "不予受理",
                    supplement_required: "待补正", processing: "办理中", completed: "已办结",
                    withdrawn: "已撤回" },
          eldercare: "养老关怀", escalated: "已升级", kind: "类型", step: "通知步骤",
          kinds: { sos: "紧急呼叫", fall: "跌倒", no_water: "长时无用水", water_leak: "漏水",
                   no_data: "无数据", door_idle: "久未出门", door_night: "夜间出门",
                   heart_rate: "心率异常" },
          step_n: (n) => (n === 0 ? "待通知" : n <= 3 ? "第" + n + "联系人" : "转网格事件"),
          parking: "停车", lot: "停车场", spaces: "车位", occupied: "占用", free: "空闲",
          unknown: "未知", charging: "充电桩",
          ocpp: { Available: "空闲", Preparing: "准备中", Charging: "充电中", SuspendedEVSE: "桩暂停",
                  SuspendedEV: "车暂停", Finishing: "结束中", Reserved: "已预约",
                  Unavailable: "不可用", Faulted: "故障" },
          lockers: "智能快递柜", waiting: "待取", lk_overdue: "超期未取", locker: "快递柜",
          map: "楼宇设备分布", online: "在线", offline: "离线", alarmed: "告警", floor_n: (n) => n + "层",
          unplaced: (n) => n + " 台未标注楼栋", ticker: "实时动态",
          ev: { raised: "告警", acknowledged: "已确认", cleared: "已消除" },
          incident: "网格事件", moved: (v, to) => "→ " + (T.zh.state[to] || to),
          state: { reported: "已上报", verifying: "核实中", filed: "已立案", dispatched: "已派遣",
                   processing: "处置中", extension: "延期", rework: "返工", feedback: "已反馈",
                   checking: "核查中", closed: "已结案", void: "已注销", returned: "已回退",
                   shelved: "挂账" } },
    en: { title: "Community screen", connected: "connected", disconnected: "disconnected",
          logout: "Log out", login: "Log in", user: "User", password: "Password",
          display: "Wall screen", key: "Display key", connect: "Connect", alarms: "Active alarms",
          lang: "中文", failed: "Login failed: ", latest: "Latest alarms", type: "Type",
          severity: "Severity", where: "Where", age: "Age", acked: "Acknowledged",
          sev: { critical: "critical", major: "major", minor: "minor", warning: "warning",
                 indeterminate: "indeterminate" },
          yes: "by", no: "no", s: "s", m: "min", h: "h",
          grid: "Grid incidents", grid_note: "today · this month", open: "Open", overdue: "Overdue",
          reported_today: "Reported today", closed_today: "Closed today", close_rate: "Close rate",
          on_time_rate: "On-time rate", grid_col: "Grid",
          stage: { intake: "intake", respond: "to accept", process: "processing", check: "checking",
                   shelved: "shelved" },
          devices: "Devices", online_rate: "Online rate", online_total: "Online / all",
          refused_today: "Readings refused today", unavailable: "Unavailable",
          services: "Government services", svc_today: "Applied today", svc_open: "In progress",
          svc_on_time: "Done on time", svc_late: "Done late",
          status: { submitted: "submitted", accepted: "accepted", rejected: "rejected",
                    supplement_required: "to supplement", processing: "processing",
                    completed: "completed", withdrawn: "withdrawn" },
          eldercare: "Elder care", escalated: "escalated", kind: "Kind", step: "Ladder step",
          kinds: { sos: "SOS", fall: "fall", no_water: "no water use", water_leak: "water leak",
                   no_data: "no data", door_idle: "door idle", door_night: "out at night",
                   heart_rate: "heart rate" },
          step_n: (n) => (n === 0 ? "not yet called" : n <= 3 ? "contact " + n : "grid incident"),
          parking: "Parking", lot: "Lot", spaces: "Spaces", occupied: "Occupied", free: "Free",
          unknown: "Unknown", charging: "Chargers",
          ocpp: { Available: "available", Preparing: "preparing", Charging: "charging",
                  SuspendedEVSE: "suspended (EVSE)", SuspendedEV: "suspended (EV)",
                  Finishing: "finishing", Reserved: "reserved", Unavailable: "unavailable",
                  Faulted: "faulted" },
          lockers: "Parcel lockers", waiting: "Waiting", lk_overdue: "Overdue", locker: "Locker",
          map: "Buildings and devices", online: "online", offline: "offline", alarmed: "alarm",
          floor_n: (n) => "F" + n, unplaced: (n) => n + " without a building", ticker: "Live",
          ev: { raised: "raised", acknowledged: "acknowledged", cleared: "cleared" },
          incident: "Incident", moved: (v, to) => "→ " + to, state: {} },
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

  /* ---- the families' panels: GET /screen/api/panel/PLUGIN, refreshed every few seconds ---- */
  const PANEL_MS = 5000;
  const panels = {};      /* plugin -> its last answer */
  const charts = {};
  const STAGES = ["intake", "respond", "process", "check", "shelved"];
  const pct = (x) => (x === undefined ? "–" : Math.round(x * 1000) / 10 + "%");
  const place = (path, keep) => path.split("/").slice(-keep).join("/");

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
  }

  function ring(id, data, kind) {
    if (!window.echarts) return;
    if (!charts[id]) charts[id] = echarts.init($(id), null, { renderer: "canvas" });
    charts[id].setOption(kind === "bar" ? {
      animation: false, grid: { left: 40, right: 10, top: 24, bottom: 30 },
      textStyle: { fontSize: 18, color: "#e6eef8" },
      xAxis: { type: "category", data: data.map((d) => d.name), axisLabel: { color: "#e6eef8", fontSize: 16 } },
      yAxis: { type: "value", minInterval: 1, axisLabel: { color: "#8aa4c4" },
               splitLine: { lineStyle: { color: "#1c3a66" } } },
      series: [{ type: "bar", data: data.map((d) => d.value), itemStyle: { color: "#7fc4ff" },
                 label: { show: true, position: "top", color: "#e6eef8", fontSize: 16 } }],
    } : {
      animation: false, textStyle: { fontSize: 18, color: "#e6eef8" },
      legend: { bottom: 0, textStyle: { color: "#e6eef8", fontSize: 16 } },
      series: [{ type: "pie", radius: ["40%", "70%"], label: { color: "#e6eef8", fontSize: 16 }, data }],
    }, true);
  }

  /* Where each panel's numbers come from: a plugin's route, or the kernel's own. */
  const SOURCES = { grid: "/screen/api/panel/grid", devices: "/screen/api/devices",
                    map: "/screen/api/map",
                    services: "/screen/api/panel/services", eldercare: "/screen/api/panel/eldercare",
                    parking: "/screen/api/panel/parking", charging: "/screen/api/panel/charging",
                    lockers: "/screen/api/panel/lockers" };
  const OCPP = ["Available", "Preparing", "Charging", "SuspendedEVSE", "SuspendedEV", "Finishing",
                "Reserved", "Unavailable", "Faulted"];
  const OCPP_COLORS = { Available: "#2ecc71", Preparing: "#7fc4ff", Charging: "#3a8cff",
                        SuspendedEVSE: "#ffd666", SuspendedEV: "#ffd666", Finishing: "#8aa4c4",
                        Reserved: "#b37feb", Unavailable: "#5b6b82", Faulted: "#ff4d4f" };

  function rows(id, list, key, cells) {
    const body = $(id);
    body.replaceChildren();
    for (const x of list) {
      const tr = document.createElement("tr");
      tr.dataset.id = x[key];
      for (const c of cells(x)) cell(tr, c[0], c[1]);
      body.appendChild(tr);
    }
  }

  /* The map: each building a column of floors (the top first), each device a dot on its
     floor — green online, grey offline, red ringed when an alarm is active on it. */
  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    const el = document.createElementNS(SVG, tag);
    for (const k in attrs) el.setAttribute(k, attrs[k]);
    if (text !== undefined) el.textContent = text;
    return el;
  }

  const RENDER = {
    map(p) {
      const t = T[lang], m = $("map");
      m.replaceChildren();
      const W = 560, colW = 132, rowH = 34, top = 44, perRow = 4;
      let maxFloors = 1;
      for (const b of p.buildings) maxFloors = Math.max(maxFloors, b.floors.length);
      const lines = Math.max(1, Math.ceil(p.buildings.length / perRow));
      const blockH = top + maxFloors * rowH + 16;
      const cols = Math.max(1, Math.min(perRow, p.buildings.length));
      m.setAttribute("viewBox", `0 0 ${Math.max(W / 2, cols * (colW + 10))} ${Math.max(120, lines * blockH)}`);
      p.buildings.forEach((b, i) => {
        const x = (i % perRow) * (colW + 10), y = Math.floor(i / perRow) * blockH;
        const g = svg("g", { "data-building": b.scope + "#" + b.building });
        g.appendChild(svg("text", { x: x + colW / 2, y: y + 16, "text-anchor": "middle", class: "bname" },
                          b.building));
        g.appendChild(svg("text", { x: x + colW / 2, y: y + 34, "text-anchor": "middle", class: "bplace" },
                          place(b.scope, 1)));
        b.floors.forEach((f, j) => {
          const fy = y + top + j * rowH;
          g.appendChild(svg("rect", { x, y: fy, width: colW, height: rowH - 4, rx: 3, class: "floor" }));
          g.appendChild(svg("text", { x: x + 4, y: fy + 20, class: "fname" },
                            f.floor === undefined ? "–" : t.floor_n(f.floor)));
          /* a device with a place (x, y 0..1000) is drawn there on the floor; the rest in a row */
          f.devices.slice(0, 8).forEach((d, k) => {
            const at = d.x !== undefined;
            const c = svg("circle", { cx: at ? x + 36 + d.x * (colW - 42) / 1000 : x + 44 + k * 11,
                                      cy: at ? fy + 5 + d.y * (rowH - 14) / 1000 : fy + 15, r: 5,
                                      class: d.alarm ? "dev alarm sev-" + d.alarm : d.online ? "dev on" : "dev off",
                                      "data-id": d.id });
            c.appendChild(svg("title", {}, d.id + " · " + d.class));
            g.appendChild(c);
          });
        });
        m.appendChild(g);
      });
      $("map-note").textContent = p.unplaced ? t.unplaced(p.unplaced) : "";
    },
    services(p) {
      const t = T[lang];
      $("svc-today").textContent = p.today;
      $("svc-open").textContent = p.in_progress;
      $("svc-overdue").textContent = p.overdue;
      $("svc-on-time").textContent = p.completed_on_time;
      $("svc-late").textContent = p.completed_late;
      ring("svc-chart", Object.keys(t.status).map((k) => ({ name: t.status[k], value: p.by_status[k] || 0 })),
           "bar");
    },
    eldercare(p) {
      const t = T[lang];
      $("eld-open").textContent = p.open;
      $("eld-escalated").textContent = p.escalated;
      rows("eld-list", p.alerts, "id", (a) => [[t.kinds[a.kind] || a.kind], [t.step_n(a.step), a.step > 3 ? "warn" : ""],
                                              [place(a.scope, 1)], [age(a.age_s)]]);
    },
    parking(p) {
      let sp = 0, occ = 0;
      for (const l of p.lots) { sp += l.spaces - l.unknown; occ += l.occupied; }
      $("park-rate").textContent = sp ? pct(occ / sp) : "–";
      rows("park-list", p.lots, "lot", (l) => [[l.lot], [l.spaces], [l.occupied], [l.free], [l.unknown]]);
    },
    charging(p) {
      const t = T[lang];
      $("chg-total").textContent = p.total_chargers;
      ring("chg-chart", OCPP.filter((k) => p.by_status[k]).map((k) => ({
        name: t.ocpp[k], value: p.by_status[k], itemStyle: { color: OCPP_COLORS[k] } })));
    },
    lockers(p) {
      $("lk-waiting").textContent = p.deposited;
      $("lk-overdue").textContent = p.overdue;
      rows("lk-list", Object.keys(p.lockers).sort().map((k) => Object.assign({ locker: k }, p.lockers[k])),
           "locker", (l) => [[l.locker], [l.deposited], [l.overdue, l.overdue ? "warn" : ""]]);
    },
    devices(p) {
      $("dev-rate").textContent = pct(p.online_rate);
      $("dev-online").textContent = p.online + " / " + p.total;
      $("dev-refused").textContent = p.refused_today;
      $("dev-down-total").textContent = p.unavailable_total;
      ring("dev-chart", p.by_class.map((c) => ({
        name: lang === "zh" ? c.title_zh : c.title_en, value: Math.round(c.online_rate * 1000) / 10 })), "bar");
      const body = $("dev-down");
      body.replaceChildren();
      const cls = {};
      for (const c of p.by_class) cls[c.class] = lang === "zh" ? c.title_zh : c.title_en;
      for (const u of p.unavailable) {
        const tr = document.createElement("tr");
        tr.dataset.id = u.id;
        cell(tr, u.id);
        cell(tr, u.name);
        cell(tr, cls[u.class] || u.class);
        cell(tr, place(u.scope, 1));
        body.appendChild(tr);
      }
    },
    grid(p) {
      const t = T[lang], tot = p.total;
      $("grid-open").textContent = tot.open;
      $("grid-overdue").textContent = tot.overdue;
      $("grid-reported").textContent = tot.reported_today;
      $("grid-closed").textContent = tot.closed_today;
      $("grid-close-rate").textContent = pct(tot.close_rate);
      $("grid-on-time").textContent = pct(tot.on_time_rate);
      ring("grid-chart", STAGES.map((k) => ({ name: t.stage[k], value: tot.by_stage[k] })), "bar");
      const body = $("grid-list");
      body.replaceChildren();
      for (const g of p.grids) {
        const tr = document.createElement("tr");
        tr.dataset.grid = g.grid;
        cell(tr, place(g.grid, 2));
        cell(tr, g.open);
        cell(tr, g.overdue, g.overdue ? "warn" : "");
        cell(tr, g.reported_today);
        cell(tr, g.closed_today);
        cell(tr, pct(g.close_rate));
        cell(tr, pct(g.on_time_rate));
        body.appendChild(tr);
      }
    },
  };

  /* ---- the ticker: a long poll on its cursor, the newest events scrolling at the bottom ---- */
  const ticker = [];
  function renderTicker() {
    const t = T[lang], box = $("ticker-list");
    box.replaceChildren();
    for (const e of ticker.slice(-12).reverse()) {
      const span = document.createElement("span");
      span.dataset.seq = e.seq;
      span.dataset.id = e.id;
      span.className = "ev " + (e.kind === "alarm" ? "sev-" + (e.severity || "") : "inc");
      const hh = new Date(e.at).toTimeString().slice(0, 5);
      span.textContent = e.kind === "alarm"
        ? `${hh} ${place(e.scope, 1)} ${e.type} ${t.ev[e.what] || e.what}`
        : `${hh} ${place(e.scope, 2)} ${t.incident} ${t.moved(e.what, e.type)}`;
      box.appendChild(span);
    }
    $("ticker").hidden = ticker.length === 0;
  }

  async function pollTicker(gen) {
    let cursor = null;
    while (gen === polling) {
      let r = null;
      try {
        r = await api("GET", "/screen/api/ticker" + (cursor === null ? "" : "?after=" + cursor),
                      undefined, pollAbort ? pollAbort.signal : undefined);
      } catch (e) { r = null; }
      if (gen !== polling) return;
      if (r && r.status === 200) {
        if (cursor === null || r.data.cursor < cursor) ticker.length = 0;
        ticker.push(...r.data.events);
        ticker.splice(0, Math.max(0, ticker.length - 50));
        cursor = r.data.cursor;
        renderTicker();
        continue;
      }
      if (r && r.status === 401) return;
      cursor = null;
      await new Promise((ok) => setTimeout(ok, 2000));
    }
  }

  /* ---- rotation on a wall screen: #rotate=SECONDS shows one page of panels at a time ---- */
  const PAGES = [["alarms", "latest", "grid", "devices", "services", "eldercare"],
                 ["map", "parking", "charging", "lockers", "alarms", "latest"]];
  let page = 0, rotTimer = null;
  function rotation() {
    const m = /(?:^|[#&])rotate=(\d+)/.exec(location.hash);
    const secs = m ? Math.max(3, parseInt(m[1], 10)) : 0;
    if (rotTimer) { clearInterval(rotTimer); rotTimer = null; }
    document.body.dataset.rotate = secs ? String(secs) : "";
    if (secs) rotTimer = setInterval(() => { page = (page + 1) % PAGES.length; showPage(); }, secs * 1000);
    showPage();
  }
  function showPage() {
    const rot = !!document.body.dataset.rotate;
    document.body.dataset.page = rot ? String(page) : "";
    document.querySelectorAll("#board .panel").forEach((el) => {
      const name = el.id.replace("panel-", "");
      el.classList.toggle("off", rot && !PAGES[page].includes(name));
    });
    if (window.echarts) for (const c of Object.values(charts).concat(chart ? [chart] : [])) c.resize();
  }
  window.addEventListener("hashchange", rotation);

  function renderPanels() {
    for (const name of Object.keys(RENDER)) {
      const el = $("panel-" + name);
      el.hidden = !panels[name];
      if (panels[name]) RENDER[name](panels[name]);
    }
  }

  /* Every panel of a plugin, again and again while the session lasts; a plugin not
     running here (404) leaves its panel out. */
  async function pollPanels(gen) {
    while (gen === polling) {
      for (const name of Object.keys(RENDER)) {
        let r = null;
        try {
          r = await api("GET", SOURCES[name], undefined, pollAbort ? pollAbort.signal : undefined);
        } catch (e) { r = null; }
        if (gen !== polling) return;
        if (r && r.status === 200) panels[name] = r.data;
        else if (r && r.status === 404) delete panels[name];
        else if (r && r.status === 401) return;
      }
      renderPanels();
      await new Promise((ok) => setTimeout(ok, PANEL_MS));
    }
  }

  function render() {
    renderPanels();
    renderTicker();
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
    pollPanels(polling);
    pollTicker(polling);
  }

  function showLogin(msg) {
    polling++;
    if (pollAbort) { pollAbort.abort(); pollAbort = null; }
    panel = null;
    for (const k of Object.keys(panels)) delete panels[k];
    ticker.length = 0;
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
    /* Every request of the session ends first: a panel asked for while the logout is on its
       way would come back 401. */
    polling++;
    if (pollAbort) { pollAbort.abort(); pollAbort = null; }
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
  rotation();
  start();
  heartbeat();
})();
