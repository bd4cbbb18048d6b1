// HTTP requests of tests to the API servers: JSON in, JSON out.

/** POSTs `body` (JSON unless a string) and returns the status and the body, parsed when it is JSON. */
export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const r = await fetch(url, { method: "POST", body: typeof body === "string" ? body : JSON.stringify(body), headers });
  const text = await r.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: r.status, body: parsed };
}

/** POSTs `body` as JSON and returns the JSON answer; fails unless the status is 2xx. */
export async function post(url: string, body: unknown): Promise<any> {
  const { status, body: answer } = await postJson(url, body, { "content-type": "application/json" });
  if (status < 200 || status > 299) throw new Error(`POST ${url}: ${status} ${JSON.stringify(answer)}`);
  return answer;
}

export async function getJson(url: string): Promise<any> {
  const r = await fetch(url);
  return r.json();
}
