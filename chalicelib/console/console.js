// 青浦好办 management console: plain JavaScript over the public HTTP API, with the signed-in
// person's own token. What a person sees is what the API lets their token read; the pages only
// choose which calls to make by the token's role.
"use strict";

const ROOT = window.QPHB_ROOT || "";
const TOKEN_KEY = "qphb.console.token";
const STAFF_ROLES = ["supervisor", "admin", "dispatcher", "department_staff", "window_staff"];
const ROLE_LABELS = {
  supervisor: "区政务办",
  admin: "管理员",
  dispatcher: "派单员",
  department_staff: "部门工作人员",
  window_staff: "窗口/中心工作人员",
  citizen: "市民",
  enterprise: "企业",
};
// What each role's console offers (the API refuses the rest anyway).
const PAGES_BY_ROLE = {
  supervisor: ["now", "targets", "centres", "delivery"],
  admin: ["now", "targets", "centres", "delivery"],
  dispatcher: ["now", "targets", "centres", "delivery"],
  department_staff: ["now", "targets", "delivery"],
  window_staff: ["centres"],
};
// Escalation steps of the deadline ladders, lowest first (domain/clocks.py).
const STEPS = ["warning", "urge", "supervise", "report"];
const STATE_LABELS = {
  on_time: "正常",
  paused: "暂停计时",
  warning: "预警",
  overdue: "已超期",
  urge: "催办",
  supervise: "督办",
  report: "通报",
};
const STATE_ORDER = ["report", "supervise", "urge", "overdue", "warning", "on_time", "paused"];
// The clock kinds' names (domain/clocks.py KIND_LABELS).
const CLOCK_KIND_LABELS = {
  contact: "联系",
  reply: "答复",
  resolve: "办结",
  call_back: "回访",
  supplement: "补正",
  confirm: "确认",
  answer: "解答",
  decision: "审批决定",
  dispatch: "派单",
  rectify: "整改",
};
const TASK_STATE_LABELS = { open: "待联系", contacted: "整改中", submitted: "待验收", closed: "已验收" };
const APPLICATION_STATE_LABELS = {
  submitted: "待预审",
  supplement_requested: "待补正",
  accepted: "已受理",
  tolerated: "容缺受理",
  approved: "准予",
  rejected: "不予",
  terminated: "已终止",
  needs_manual_review: "待人工预审",
};
const DEADLINE_STATE_LABELS = { running: "计时中", paused: "暂停", breached: "已超期", met: "已完成", cancelled: "已取消" };
const PAGE_SIZE = 100;
const MAX_PAGES = 5;

// ---- session -----------------------------------------------------------------------------

const session = { token: null, claims: null, me: null, now: null, departments: null };

function decodeClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    return null;
  }
}

function role() {
  return (session.me && session.me.role) || (session.claims && session.claims.role) || "";
}

function ownDepartment() {
  return (session.me && session.me.department_id) || (session.claims && session.claims.dept) || null;
}

function seesEveryDepartment() {
  return ["supervisor", "admin", "dispatcher"].includes(role());
}

// ---- the API -----------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `请求失败（${status}）`);
    this.status = status;
    this.code = body && body.code;
  }
}

async function api(path, { method = "GET", body, query } = {}) {
  const url = new URL(ROOT + path, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const headers = { Accept: "application/json" };
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["Idempotency-Key"] = newKey();
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

// Every page of a paginated list, up to a bound (the console shows work, not archives).
async function all(path, query = {}) {
  const items = [];
  let cursor = null;
  for (let n = 0; n < MAX_PAGES; n += 1) {
    const page = await api(path, { query: { ...query, limit: PAGE_SIZE, cursor } });
    items.push(...page.items);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  return items;
}

// A call whose refusal (403/404) means "not for you / not here": answers the fallback.
async function optional(promise, fallback) {
  try {
    return await promise;
  } catch (error) {
    if (error instanceof ApiError && [403, 404].includes(error.status)) return fallback;
    throw error;
  }
}

// ---- time --------------------------------------------------------------------------------

// The local stage has a demo clock that can be moved; everywhere else it is real time.
async function currentTime() {
  const clock = await optional(api("/dev/clock"), null);
  return clock ? new Date(clock.now) : new Date();
}

function monthOf(date, back = 0) {
  // Months are Beijing months, as every report counts them.
  const shifted = new Date(date.getTime() + 8 * 3600 * 1000);
  let year = shifted.getUTCFullYear();
  let month = shifted.getUTCMonth() - back;
  while (month < 0) {
    month += 12;
    year -= 1;
  }
  return `${year}-${String(month + 1).padStart(2, "0")}`;
}

function formatTime(value) {
  if (!value) return "—";
  const date = new Date(value);
  const parts = new Intl.DateTimeFormat("zh-CN", {
    timeZone: "Asia/Shanghai",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    hour12: false,
  }).format(date);
  return parts;
}

function percent(value) {
  return value === null || value === undefined ? "—" : `${(value * 100).toFixed(1)}%`;
}

// ---- rendering helpers ------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") element.className = value;
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

function badge(state) {
  return h("span", { class: `badge s-${state}`, dataset: { state } }, STATE_LABELS[state] || state);
}

function table(headers, rows, { rowAttrs } = {}) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, headers.map((title) => h("th", {}, title)))),
      h(
        "tbody",
        {},
        rows.length === 0
          ? h("tr", {}, h("td", { colspan: headers.length, class: "muted" }, "暂无数据"))
          : rows.map((row, index) => h("tr", rowAttrs ? rowAttrs(index) : {}, row.map((cell) => h("td", {}, cell)))),
      ),
    ),
  );
}

function failure(error) {
  if (error instanceof ApiError && error.status === 401) {
    // The token expired while the page was open: back to signing in, once the page settles.
    queueMicrotask(() => signOut("登录已过期，请重新登录"));
  }
  return h("p", { class: "error" }, `加载失败：${error.message}`);
}

function setMain(...children) {
  const main = document.getElementById("main");
  main.replaceChildren(...children);
  return main;
}

const charts = [];

function chart(canvas, config) {
  if (!window.Chart) {
    canvas.replaceWith(h("p", { class: "muted" }, "图表库未加载"));
    return;
  }
  charts.push(new window.Chart(canvas, { ...config, options: { responsive: true, maintainAspectRatio: false, animation: false, ...config.options } }));
}

function chartBox(id) {
  const canvas = h("canvas", { id });
  return { box: h("div", { class: "chart-box" }, canvas), canvas };
}

// ---- departments -------------------------------------------------------------------------

// The departments whose work the person may see, with names where known: their own one; for
// the district office, every department the month's figures and reports name.
async function departments() {
  if (session.departments) return session.departments;
  const names = new Map();
  if (!seesEveryDepartment()) {
    const own = ownDepartment();
    if (own) names.set(own, own);
  } else {
    const months = [monthOf(session.now), monthOf(session.now, 1)];
    const lists = await Promise.all([
      ...months.map((m) => optional(api("/deadline-reports/figures", { query: { month: m } }), { items: [] })),
      ...months.map((m) => optional(api("/reports/tickets", { query: { month: m } }), { departments: [] })),
      optional(api("/reports/reviews", { query: { month: months[0] } }), { departments: [] }),
    ]);
    for (const list of lists) {
      for (const row of list.items || list.departments || []) {
        if (!row.department_id) continue;
        if (!names.has(row.department_id) || row.department_name) {
          names.set(row.department_id, row.department_name || names.get(row.department_id) || row.department_id);
        }
      }
    }
  }
  session.departments = names;
  return names;
}

function departmentName(id) {
  return (session.departments && session.departments.get(id)) || id || "—";
}

// ---- the Now page ------------------------------------------------------------------------

// The highest escalation step taken on each subject this month and last month.
async function escalations() {
  const months = [monthOf(session.now), monthOf(session.now, 1)];
  const lists = await Promise.all(
    months.flatMap((month) =>
      STEPS.map((step) =>
        optional(all("/deadline-reports/escalations", { step, month }), []).then((items) => items.map((i) => ({ ...i, step }))),
      ),
    ),
  );
  const highest = new Map();
  const departmentsEscalated = new Set();
  for (const record of lists.flat()) {
    if (record.department_id) departmentsEscalated.add(record.department_id);
    if (!record.subject_id) continue;
    const rank = STEPS.indexOf(record.step);
    if (rank > (highest.get(record.subject_id) ?? -1)) highest.set(record.subject_id, rank);
  }
  return { highest, departmentsEscalated };
}

function deadlineState(subjectId, deadline, highest) {
  const rank = highest.get(subjectId);
  if (rank !== undefined && rank >= 1) return STEPS[rank];
  if (deadline.overdue || deadline.state === "breached") return "overdue";
  if (rank === 0) return "warning";
  if (deadline.state === "paused") return "paused";
  return "on_time";
}

function openDeadline(deadlines) {
  const open = (deadlines || []).filter((d) => ["running", "paused", "breached"].includes(d.state));
  open.sort((a, b) => String(a.due_at || "9").localeCompare(String(b.due_at || "9")));
  return open[0] || null;
}

async function loadWork() {
  const [names, { highest, departmentsEscalated }] = await Promise.all([departments(), escalations()]);
  // Work escalated in these two months names its department even when no report does yet.
  if (seesEveryDepartment()) {
    for (const id of departmentsEscalated) if (!names.has(id)) names.set(id, id);
  }
  const rows = [];
  await Promise.all(
    [...names.keys()].map(async (department) => {
      const [tickets, tasks, applications] = await Promise.all([
        optional(all(`/departments/${encodeURIComponent(department)}/tickets`), []),
        optional(all(`/departments/${encodeURIComponent(department)}/rectifications`), []),
        optional(all(`/departments/${encodeURIComponent(department)}/applications`), []),
      ]);
      for (const t of tickets) {
        if (!t.next_deadline_state) continue; // nothing is timed on it now (replied, closed)
        if (t.department_name) names.set(department, t.department_name);
        rows.push({
          type: "ticket",
          typeLabel: "办不成事",
          id: t.ticket_id,
          department: t.department_id || department,
          centre: t.centre_id || null,
          title: `${t.kind_label}${t.item_name ? `：${t.item_name}` : ""}`,
          status: t.state_label,
          due: t.next_due_at,
          state: deadlineState(t.ticket_id, { overdue: t.overdue, state: t.next_deadline_state }, highest),
        });
      }
      for (const task of tasks) {
        const deadline = openDeadline(task.deadlines);
        if (!deadline) continue;
        rows.push({
          type: "rectification",
          typeLabel: "差评整改",
          id: task.review_id,
          department: task.department_id || department,
          centre: null,
          title: `${task.rating} 星评价整改（第 ${task.round} 轮）`,
          status: TASK_STATE_LABELS[task.state] || task.state,
          due: deadline.due_at,
          state: deadlineState(task.review_id, { overdue: deadline.state === "breached", state: deadline.state }, highest),
        });
      }
      for (const application of applications) {
        const deadline = openDeadline(application.deadlines);
        if (!deadline) continue;
        const supplement = /supplement/.test(deadline.kind) || /supplement/.test(application.state);
        rows.push({
          type: "application",
          typeLabel: supplement ? "补正" : "办件审批",
          id: application.application_id,
          department: application.department_id || department,
          centre: null,
          title: application.item_name,
          status: APPLICATION_STATE_LABELS[application.state] || application.state,
          due: deadline.due_at,
          state: deadlineState(application.application_id, { overdue: deadline.state === "breached", state: deadline.state }, highest),
        });
      }
    }),
  );
  rows.sort(
    (a, b) =>
      STATE_ORDER.indexOf(a.state) - STATE_ORDER.indexOf(b.state) ||
      String(a.due || "9").localeCompare(String(b.due || "9")),
  );
  return rows;
}

async function pageNow() {
  setMain(h("h1", {}, "当前办理"), h("p", { class: "muted" }, "正在加载…"));
  let rows;
  try {
    rows = await loadWork();
  } catch (error) {
    setMain(h("h1", {}, "当前办理"), failure(error));
    return;
  }
  const filters = { department: "", centre: "", state: "", type: "" };
  const departmentsSeen = [...new Set(rows.map((r) => r.department))].sort();
  const centresSeen = [...new Set(rows.map((r) => r.centre).filter(Boolean))].sort();
  const select = (name, label, options) =>
    h(
      "label",
      {},
      label,
      h(
        "select",
        {
          id: `filter-${name}`,
          onchange: (event) => {
            filters[name] = event.target.value;
            draw();
          },
        },
        h("option", { value: "" }, "全部"),
        options.map(([value, text]) => h("option", { value }, text)),
      ),
    );
  const cards = h("div", { class: "cards", id: "state-cards" });
  const holder = h("div", { id: "work" });
  const scope = seesEveryDepartment()
    ? "全部部门"
    : `本部门：${departmentName(ownDepartment())}`;
  setMain(
    h("h1", {}, "当前办理"),
    h("p", { class: "muted" }, `${scope} · 截至 ${formatTime(session.now)}（工单、差评整改、补正与审批，按时限状态）`),
    cards,
    h(
      "div",
      { class: "filters" },
      select("department", "部门", departmentsSeen.map((d) => [d, departmentName(d)])),
      select("centre", "服务中心", centresSeen.map((c) => [c, c])),
      select("state", "时限状态", STATE_ORDER.map((s) => [s, STATE_LABELS[s]])),
      select("type", "类型", [["ticket", "办不成事"], ["rectification", "差评整改"], ["application", "补正与审批"]]),
      h("button", { class: "small", id: "refresh", onclick: () => route(true) }, "刷新"),
    ),
    holder,
  );
  function draw() {
    const shown = rows.filter(
      (r) =>
        (!filters.department || r.department === filters.department) &&
        (!filters.centre || r.centre === filters.centre) &&
        (!filters.state || r.state === filters.state) &&
        (!filters.type || r.type === filters.type),
    );
    cards.replaceChildren(
      ...STATE_ORDER.map((state) =>
        h(
          "div",
          { class: "card" },
          h("div", { class: "muted" }, STATE_LABELS[state]),
          h("div", { class: "n", dataset: { count: state } }, shown.filter((r) => r.state === state).length),
        ),
      ),
    );
    holder.replaceChildren(
      table(
        ["时限状态", "类型", "编号", "事项", "承办部门", "办理状态", "时限"],
        shown.map((r) => [badge(r.state), r.typeLabel, r.id, r.title, departmentName(r.department), r.status, formatTime(r.due)]),
        {
          rowAttrs: (index) => ({
            class: "clickable work-row",
            dataset: { id: shown[index].id, department: shown[index].department, state: shown[index].state },
            onclick: () => openTimeline(shown[index]),
          }),
        },
      ),
    );
  }
  draw();
}

async function openTimeline(row) {
  const drawer = document.getElementById("drawer");
  const content = document.getElementById("drawer-content");
  content.replaceChildren(h("p", { class: "muted" }, "正在加载…"));
  drawer.hidden = false;
  try {
    if (row.type === "ticket") {
      const [ticket, clocks] = await Promise.all([
        api(`/tickets/${encodeURIComponent(row.id)}`),
        optional(all("/clocks", { subject_type: "ticket", subject_id: row.id }), []),
      ]);
      content.replaceChildren(
        h("h2", {}, `工单 ${ticket.ticket_id}`),
        h("p", {}, `${ticket.kind_label} · ${ticket.state_label} · ${ticket.department_name || "未派单"}`),
        h("p", {}, ticket.description),
        clockTable(clocks),
        h("h2", {}, "办理经过"),
        timelineList(ticket.timeline.map((e) => ({ at: e.at, label: e.label, who: e.actor_name, note: e.note }))),
      );
    } else if (row.type === "rectification") {
      const task = await api(`/reviews/${encodeURIComponent(row.id)}/rectification`);
      content.replaceChildren(
        h("h2", {}, `差评整改 ${task.review_id}`),
        h("p", {}, `${departmentName(task.department_id)} · ${TASK_STATE_LABELS[task.state] || task.state}`),
        deadlineList(task.deadlines),
        h("h2", {}, "整改经过"),
        timelineList((task.history || []).map((e) => ({ at: e.at, label: e.event || e.action || e.state, who: e.actor_id, note: e.note }))),
      );
    } else {
      const application = await api(`/applications/${encodeURIComponent(row.id)}`);
      content.replaceChildren(
        h("h2", {}, `办件 ${application.application_id}`),
        h("p", {}, `${application.item_name} · ${APPLICATION_STATE_LABELS[application.state] || application.state}`),
        deadlineList(application.deadlines),
        h("h2", {}, "办理经过"),
        timelineList((application.timeline || []).map((e) => ({ at: e.at, label: e.label || e.event, who: e.actor_name || e.actor_id, note: e.note }))),
      );
    }
  } catch (error) {
    content.replaceChildren(failure(error));
  }
}

function clockTable(clocks) {
  return table(
    ["时限", "状态", "到期", "已执行升级"],
    clocks.map((c) => [
      CLOCK_KIND_LABELS[c.kind] || c.kind,
      c.overdue ? "已超期" : c.open ? "计时中" : "已结束",
      formatTime(c.due_at),
      (c.steps_done || []).map((s) => STATE_LABELS[s] || s).join("、") || "—",
    ]),
  );
}

function deadlineList(deadlines) {
  return table(
    ["时限", "状态", "到期"],
    (deadlines || []).map((d) => [CLOCK_KIND_LABELS[d.kind] || d.kind, DEADLINE_STATE_LABELS[d.state] || d.state, formatTime(d.due_at)]),
  );
}

function timelineList(events) {
  if (!events.length) return h("p", { class: "muted" }, "暂无记录");
  return h(
    "ol",
    { class: "timeline" },
    events.map((e) => h("li", {}, h("strong", {}, e.label || "—"), ` · ${formatTime(e.at)}${e.who ? ` · ${e.who}` : ""}`, e.note ? h("div", { class: "muted" }, e.note) : null)),
  );
}

// ---- the Targets page --------------------------------------------------------------------

// The monthly operations report when the API has it; otherwise the same shape built from the
// application and ticket reports.
async function operations(month) {
  try {
    return await api("/reports/operations", { query: { month } });
  } catch (error) {
    // Not built on this system yet (404), or not for this person (403): the older reports.
    if (!(error instanceof ApiError) || ![403, 404].includes(error.status)) throw error;
  }
  const [applications, tickets] = await Promise.all([
    optional(api("/reports/applications", { query: { month } }), null),
    optional(api("/reports/tickets", { query: { month } }), null),
  ]);
  const figures = [];
  if (applications) {
    const names = {
      prefill_rate: "智能预填率",
      prereview_automation_rate: "智能预审自动化率",
      first_submission_success_rate: "一次申报成功率",
      online_completion_rate: "全程网办率",
    };
    for (const [key, name] of Object.entries(names)) {
      const value = applications.overall[key];
      const target = applications.targets[key];
      figures.push({ key, name, value, target, unit: "ratio", met: value === null || value === undefined ? null : value >= target });
    }
    figures.push({
      key: "p90_processing_working_days",
      name: "办理时长（P90，工作日）",
      value: applications.overall.p90_processing_working_days,
      target: null,
      unit: "working_days",
      met: null,
    });
  }
  if (tickets) {
    const sum = (field) => tickets.departments.reduce((total, d) => total + (d[field] || 0), 0);
    const rate = (numerator, denominator) => (sum(denominator) ? sum(numerator) / sum(denominator) : null);
    const ticketFigures = [
      ["ticket_contact_on_time_rate", "办不成事 1 个工作日内联系率", rate("contact_on_time", "contact_judged"), 1],
      ["ticket_resolve_on_time_rate", "办不成事按时答复率", rate("resolve_on_time", "resolve_judged"), 1],
      ["ticket_satisfaction_rate", "办不成事回访满意率", rate("satisfied", "call_backs"), null],
    ];
    for (const [key, name, value, target] of ticketFigures) {
      figures.push({ key, name, value, target, unit: "ratio", met: value === null || target === null ? null : value >= target });
    }
  }
  return { month, figures, fallback: true };
}

function figureValue(figure) {
  if (figure.value === null || figure.value === undefined) return "—";
  if (figure.unit === "ratio" || figure.unit === "percent") return percent(figure.unit === "percent" ? figure.value / 100 : figure.value);
  return `${figure.value}${figure.unit === "minutes" ? " 分钟" : figure.unit === "working_days" ? " 个工作日" : ""}`;
}

function figureTarget(figure) {
  if (figure.target === null || figure.target === undefined) return "—";
  return figureValue({ ...figure, value: figure.target });
}

async function pageTargets() {
  setMain(h("h1", {}, "目标达成"), h("p", { class: "muted" }, "正在加载…"));
  const months = [5, 4, 3, 2, 1, 0].map((back) => monthOf(session.now, back));
  let reports;
  let ranking;
  try {
    [reports, ranking] = await Promise.all([
      Promise.all(months.map((m) => operations(m))),
      optional(api("/reports/reviews", { query: { month: months[months.length - 1] } }), null),
    ]);
  } catch (error) {
    setMain(h("h1", {}, "目标达成"), failure(error));
    return;
  }
  const current = reports[reports.length - 1];
  const trend = chartBox("trend-chart");
  const rankingChart = chartBox("ranking-chart");
  const met = (value) =>
    value === null || value === undefined
      ? h("span", { class: "muted" }, "—")
      : h("span", { class: value ? "met" : "unmet" }, value ? "达标" : "未达标");
  const rankingRows = ranking ? [...ranking.departments].sort((a, b) => (a.rank ?? 999) - (b.rank ?? 999)) : [];
  setMain(
    h("h1", {}, "目标达成"),
    h("p", { class: "muted" }, `${current.month} 月度运行指标${current.fallback ? "（由办件与工单月报汇总）" : ""}`),
    table(
      ["指标", "本月", "目标", "是否达标"],
      current.figures.map((f) => [f.name, figureValue(f), figureTarget(f), met(f.met)]),
    ),
    h("h2", {}, "近六个月趋势"),
    h("div", { class: "charts" }, trend.box, rankingChart.box),
    h("h2", {}, `好差评部门排名（${months[months.length - 1]}）`),
    ranking
      ? table(
          ["排名", "部门", "评价数", "好评率", "整改按时率", "提示"],
          rankingRows.map((r) => [
            r.rank ?? "—",
            r.department_name,
            r.reviews,
            percent(r.good_rate),
            percent(r.rectify_on_time_rate),
            [r.bottom_two ? h("span", { class: "badge s-supervise" }, "末两位") : null, r.talk ? h("span", { class: "badge s-report" }, "约谈") : null],
          ]),
          { rowAttrs: (index) => ({ class: rankingRows[index].bottom_two ? "bottom-two ranking-row" : "ranking-row" }) },
        )
      : h("p", { class: "muted" }, "无权查看或暂无评价排名"),
  );
  const ratioKeys = current.figures.filter((f) => f.unit === "ratio" || f.unit === "percent").map((f) => f.key);
  const palette = ["#0b5cad", "#1f7a3f", "#b7791f", "#c53030", "#6b46c1", "#2c7a7b", "#97266d", "#4a5568"];
  chart(trend.canvas, {
    type: "line",
    data: {
      labels: months,
      datasets: ratioKeys.map((key, index) => {
        const name = current.figures.find((f) => f.key === key).name;
        return {
          label: name,
          borderColor: palette[index % palette.length],
          backgroundColor: palette[index % palette.length],
          spanGaps: true,
          data: reports.map((report) => {
            const figure = report.figures.find((f) => f.key === key);
            if (!figure || figure.value === null || figure.value === undefined) return null;
            return figure.unit === "percent" ? figure.value : figure.value * 100;
          }),
        };
      }),
    },
    options: { scales: { y: { min: 0, max: 100, title: { display: true, text: "%" } } }, plugins: { title: { display: true, text: "各项指标（%）" } } },
  });
  chart(rankingChart.canvas, {
    type: "bar",
    data: {
      labels: rankingRows.map((r) => r.department_name),
      datasets: [
        {
          label: "好评率（%）",
          data: rankingRows.map((r) => (r.good_rate === null ? 0 : r.good_rate * 100)),
          backgroundColor: rankingRows.map((r) => (r.bottom_two ? "#c53030" : "#0b5cad")),
        },
      ],
    },
    options: { indexAxis: "y", scales: { x: { min: 0, max: 100 } }, plugins: { title: { display: true, text: "好评率排名（红色为末两位）" } } },
  });
}

// ---- the Centres page --------------------------------------------------------------------

async function pageCentres() {
  setMain(h("h1", {}, "服务中心"), h("p", { class: "muted" }, "正在加载…"));
  let queues;
  try {
    let centres = await all("/centres");
    // A centre's manager sees their own centre; the district office sees every centre.
    const managed = (session.me && session.me.managed_centre_ids) || [];
    if (!seesEveryDepartment() && managed.length) centres = centres.filter((c) => managed.includes(c.centre_id));
    queues = [];
    // A few at a time: every queue is its own call.
    for (let i = 0; i < centres.length; i += 6) {
      const batch = centres.slice(i, i + 6);
      queues.push(
        ...(await Promise.all(batch.map((c) => optional(api(`/centres/${encodeURIComponent(c.centre_id)}/queue`), null)))),
      );
    }
    queues = queues.filter(Boolean);
  } catch (error) {
    setMain(h("h1", {}, "服务中心"), failure(error));
    return;
  }
  const targets = queues[0] ? queues[0].target_minutes : { simple: 10, complex: 30 };
  const wait = (q, kind) => {
    const value = q.average_wait_minutes[kind];
    const text = value === null || value === undefined ? "—" : `${value.toFixed(1)} 分钟`;
    return h("span", { class: q.over_target[kind] ? "unmet" : "" }, text);
  };
  const box = chartBox("centres-chart");
  setMain(
    h("h1", {}, "服务中心"),
    h("p", { class: "muted" }, `当前排队与等候（目标：简易事项 ${targets.simple ?? 10} 分钟、复杂事项 ${targets.complex ?? 30} 分钟）`),
    table(
      ["服务中心", "等候人数", "其中优先", "在岗窗口", "现在签到预计等候", "简易事项平均等候", "复杂事项平均等候"],
      queues.map((q) => [
        h("span", { class: "centre-name", dataset: { centre: q.centre_id } }, q.centre_name),
        q.waiting,
        q.waiting_priority,
        q.counters,
        `${q.estimated_wait_minutes} 分钟`,
        wait(q, "simple"),
        wait(q, "complex"),
      ]),
    ),
    h("h2", {}, "预计等候（分钟）"),
    h("div", { class: "charts" }, box.box),
  );
  chart(box.canvas, {
    type: "bar",
    data: {
      labels: queues.map((q) => q.centre_name),
      datasets: [
        { label: "现在签到预计等候", data: queues.map((q) => q.estimated_wait_minutes), backgroundColor: "#0b5cad" },
        { label: "简易事项目标", data: queues.map((q) => q.target_minutes.simple ?? 10), type: "line", borderColor: "#1f7a3f", pointRadius: 0 },
        { label: "复杂事项目标", data: queues.map((q) => q.target_minutes.complex ?? 30), type: "line", borderColor: "#c53030", pointRadius: 0 },
      ],
    },
  });
}

// ---- the Delivery health page ------------------------------------------------------------

async function pageDelivery() {
  setMain(h("h1", {}, "通知投递"), h("p", { class: "muted" }, "正在加载…"));
  let perDepartment;
  try {
    const names = await departments();
    perDepartment = await Promise.all(
      [...names.keys()].sort().map(async (department) => ({
        department,
        health: await optional(api("/notifications/delivery-health", { query: { department_id: department } }), null),
        letters: await optional(all("/notifications/dead-letters", { department_id: department }), null),
      })),
    );
  } catch (error) {
    setMain(h("h1", {}, "通知投递"), failure(error));
    return;
  }
  const readable = perDepartment.filter((d) => d.letters !== null);
  const letters = readable.flatMap((d) => d.letters.map((l) => ({ ...l, department: d.department })));
  // Dead letters are the notifications whose retries all failed (status "failed").
  const status = (letter) => ({ failed: "已转死信", retrying: "重试中", pending: "待投递", delivered: "已送达" })[letter.status] || letter.status;
  setMain(
    h("h1", {}, "通知投递"),
    h("p", { class: "muted" }, "各部门回调通知：重试全部失败的通知转为死信，可在部门接口恢复后重新投递。"),
    table(
      ["部门", "已送达", "待投递", "重试中", "死信", "部门接口", "最近一次送达", "最近一次转为死信"],
      readable.map((d) => {
        const health = d.health || {};
        const mark = health.complete === false ? "+" : "";
        return [
          departmentName(d.department),
          health.delivered === undefined ? "—" : h("span", { dataset: { delivered: d.department } }, health.delivered),
          health.pending === undefined ? "—" : `${health.pending}${mark}`,
          health.retrying === undefined ? "—" : h("span", { class: health.retrying ? "unmet" : "" }, `${health.retrying}${mark}`),
          h("span", { class: d.letters.length ? "unmet" : "met", dataset: { deadLetters: d.department } }, d.letters.length),
          health.circuit_open === undefined ? "—" : health.circuit_open ? h("span", { class: "unmet" }, "连续失败，暂停投递") : "正常",
          formatTime(health.last_delivered_at),
          formatTime(d.letters.map((l) => l.dead_at).filter(Boolean).sort().pop()),
        ];
      }),
    ),
    h("h2", {}, "死信"),
    table(
      ["部门", "通知", "类别", "转为死信", "最后一次尝试", "状态", ""],
      letters.map((l) => [
        departmentName(l.department),
        l.title,
        l.category,
        formatTime(l.dead_at),
        l.last_attempt ? `${l.last_attempt.status_code ?? l.last_attempt.error ?? "—"}（第 ${l.last_attempt.number} 次）` : "—",
        h("span", { class: "letter-status" }, status(l)),
        l.status === "failed"
          ? h(
              "button",
              {
                class: "small redrive",
                onclick: async (event) => {
                  const button = event.target;
                  button.disabled = true;
                  try {
                    const answer = await api(`/notifications/${encodeURIComponent(l.notification_id)}/redrive`, { method: "POST" });
                    button.replaceWith(answer.redriven ? "已重新投递" : "已在投递中");
                  } catch (error) {
                    button.disabled = false;
                    button.after(h("span", { class: "error" }, error.message));
                  }
                },
              },
              "重新投递",
            )
          : "",
      ]),
    ),
  );
}

// ---- signing in --------------------------------------------------------------------------

async function pageSignIn(message) {
  setMain(h("h1", {}, "登录"), message ? h("p", { class: "error" }, message) : null, h("p", { class: "muted" }, "正在加载…"));
  const users = await optional(all("/dev/users"), null);
  const paste = h("textarea", { id: "token-input", placeholder: "粘贴统一身份认证签发的登录凭证（Bearer token）" });
  const pasteForm = h(
    "div",
    {},
    h("h2", {}, "使用登录凭证"),
    paste,
    h("p", {}, h("button", { class: "primary", id: "token-submit", onclick: () => signIn(paste.value.trim()) }, "登录")),
  );
  if (users === null) {
    setMain(
      h("div", { class: "signin" }, h("h1", {}, "登录"), message ? h("p", { class: "error" }, message) : null,
        h("p", {}, "请通过统一身份认证登录后返回本页，或粘贴登录凭证。"), pasteForm),
    );
    return;
  }
  const staff = users.filter((u) => STAFF_ROLES.includes(u.role));
  setMain(
    h(
      "div",
      { class: "signin" },
      h("h1", {}, "登录（本地演示环境）"),
      message ? h("p", { class: "error" }, message) : null,
      h("p", { class: "muted" }, "选择一位演示用户登录，控制台按其角色显示可见的内容。"),
      h(
        "div",
        { class: "users" },
        staff.map((u) =>
          h(
            "button",
            { class: "demo-user", dataset: { user: u.user_id }, onclick: () => demoSignIn(u.user_id) },
            u.display_name,
            h("span", { class: "role" }, `${ROLE_LABELS[u.role] || u.role}${u.description ? ` · ${u.description}` : ""}`),
          ),
        ),
      ),
      pasteForm,
    ),
  );
}

async function demoSignIn(userId) {
  try {
    const issued = await api("/dev/tokens", { method: "POST", body: { user_id: userId } });
    await signIn(issued.token);
  } catch (error) {
    pageSignIn(error.message);
  }
}

async function signIn(token) {
  if (!token) return;
  session.token = token;
  session.claims = decodeClaims(token);
  try {
    session.me = await api("/me");
  } catch (error) {
    session.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    const expired = error instanceof ApiError && error.status === 401;
    pageSignIn(expired ? "登录已过期，请重新登录" : `登录失败：${error.message}`);
    return;
  }
  if (!STAFF_ROLES.includes(session.me.role)) {
    session.token = null;
    pageSignIn("此控制台仅供工作人员使用");
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  session.departments = null;
  const pages = PAGES_BY_ROLE[session.me.role];
  if (!pages.includes(location.hash.slice(1))) {
    location.hash = `#${pages[0]}`; // the hashchange routes
    return;
  }
  route(true);
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  Object.assign(session, { token: null, claims: null, me: null, departments: null });
  document.getElementById("nav").hidden = true;
  document.getElementById("who").hidden = true;
  pageSignIn(message);
}

// ---- routing -----------------------------------------------------------------------------

const PAGES = { now: pageNow, targets: pageTargets, centres: pageCentres, delivery: pageDelivery };

async function route(reload = false) {
  if (!session.token) return pageSignIn();
  delete document.body.dataset.ready;
  while (charts.length) charts.pop().destroy();
  document.getElementById("drawer").hidden = true;
  const allowed = PAGES_BY_ROLE[role()] || [];
  let page = location.hash.slice(1);
  if (!allowed.includes(page)) page = allowed[0];
  const nav = document.getElementById("nav");
  nav.hidden = false;
  for (const link of nav.querySelectorAll("a")) {
    link.hidden = !allowed.includes(link.dataset.page);
    link.classList.toggle("active", link.dataset.page === page);
  }
  const who = document.getElementById("who");
  who.hidden = false;
  document.getElementById("who-name").textContent = `${session.me.display_name}（${ROLE_LABELS[role()] || role()}）`;
  if (reload) session.departments = null;
  session.now = await currentTime();
  document.body.dataset.page = page;
  await PAGES[page]();
  document.body.dataset.ready = page;
}

async function start() {
  document.getElementById("sign-out").addEventListener("click", () => signOut());
  document.getElementById("drawer-close").addEventListener("click", () => {
    document.getElementById("drawer").hidden = true;
  });
  window.addEventListener("hashchange", () => {
    delete document.body.dataset.ready;
    route();
  });
  // An identity provider may hand the token back in the fragment: #token=<jwt>.
  const handed = new URLSearchParams(location.hash.slice(1)).get("token");
  if (handed) {
    history.replaceState(null, "", location.pathname);
    return signIn(handed);
  }
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) return signIn(saved);
  return pageSignIn();
}

start();
