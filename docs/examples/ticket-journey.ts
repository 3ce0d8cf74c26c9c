/**
 * 小程序开发示例：“办不成事”反映的一次完整经历——提交、查看进度、办结后评价。
 *
 * 类型全部来自接口文档（GET /openapi.json）生成的 tools/api-client/generated/api.d.ts
 * （`make api-contract` 生成，并用 tsc --noEmit 检查本文件），字段或状态码一变，这里就编译不过。
 * 网络请求用标准 fetch；小程序里换成 wx.request 即可，类型不变。
 */
import type { components, paths } from "../../tools/api-client/generated/api";

type Json<T> = T extends { content: { "application/json": infer Body } } ? Body : never;

type IntakeBody = Json<paths["/tickets"]["post"]["requestBody"]>;
type Ticket = Json<paths["/tickets"]["post"]["responses"][201]>;
type TicketDetail = Json<paths["/tickets/{ticket_id}"]["get"]["responses"][200]>;
type ReviewBody = Json<paths["/reviews"]["post"]["requestBody"]>;
type Review = Json<paths["/reviews"]["post"]["responses"][201]>;
type ApiError = components["schemas"]["Error"];

/** 接口返回的错误：status 为 HTTP 状态码，error.code 稳定可供程序判断，error.message 可直接展示。 */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly error: ApiError,
  ) {
    super(error.message);
  }
}

interface Session {
  baseUrl: string; // 例如 https://<网关域名>/api
  token: string; // 登录后取得的 Bearer 凭证
}

async function send<T>(
  session: Session,
  method: "GET" | "POST",
  path: string,
  body?: object,
  idempotencyKey?: string,
): Promise<T> {
  const headers: Record<string, string> = { Authorization: `Bearer ${session.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json; charset=utf-8";
  // 同一次操作重试时必须带同一个 Idempotency-Key：服务端原样返回第一次的结果，不会重复提交。
  if (idempotencyKey !== undefined) headers["Idempotency-Key"] = idempotencyKey;
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(session.baseUrl + path, init);
  const data: unknown = await response.json();
  if (!response.ok) throw new ApiFailure(response.status, data as ApiError);
  return data as T;
}

/** 第一步：提交反映。`actionKey` 在用户点“提交”时生成一次，网络重试时沿用。 */
export function fileTicket(session: Session, actionKey: string): Promise<Ticket> {
  const intake: IntakeBody = {
    kind: "not_accepted",
    channel: "mini_program",
    description: "企业设立登记网上提交三次都被退回，每次理由都不一样",
    contact: { method: "phone" },
    item_code: "QP-SC-101",
    item_name: "企业设立登记",
  };
  return send<Ticket>(session, "POST", "/tickets", intake, actionKey);
}

/** 第二步：查看进度（状态、各项时限、办理经过）。 */
export function readTicket(session: Session, ticketId: string): Promise<TicketDetail> {
  return send<TicketDetail>(session, "GET", `/tickets/${encodeURIComponent(ticketId)}`);
}

/** 第三步：办结后评价（一次办理评价一次；差评须写明理由）。 */
export function rateTicket(
  session: Session,
  ticket: TicketDetail,
  rating: 1 | 2 | 3 | 4 | 5,
  comment: string,
): Promise<Review> {
  const review: ReviewBody = {
    handling_type: "ticket",
    handling_id: ticket.ticket_id,
    rating,
    comment,
    // 线上办理的五个评价维度，每项 1 到 5。
    dimensions: {
      整体满意度: rating,
      办事效率: rating,
      办事指南精确度: rating,
      办事便捷度: rating,
      平台操作性: rating,
    },
  };
  return send<Review>(session, "POST", "/reviews", review, `review-${ticket.ticket_id}`);
}

/** 整个流程：提交后查看；已办结就评价，否则把当前状态和最近的时限告诉用户。 */
export async function ticketJourney(session: Session, actionKey: string): Promise<string> {
  const filed = await fileTicket(session, actionKey);
  const ticket = await readTicket(session, filed.ticket_id);
  if (ticket.state !== "closed") {
    const running = ticket.deadlines.find((deadline) => deadline.state === "running");
    const due = running?.due_at ? `，${running.kind_label}时限 ${running.due_at}` : "";
    return `工单 ${ticket.ticket_id}：${ticket.state_label}${due}`;
  }
  try {
    const review = await rateTicket(session, ticket, 5, "");
    return `已评价（${review.review_id}）`;
  } catch (failure) {
    if (failure instanceof ApiFailure && failure.status === 409) {
      return "这次办理已经评价过了";
    }
    throw failure;
  }
}
