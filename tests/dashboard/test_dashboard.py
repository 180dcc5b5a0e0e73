"""The dashboard in headless Chromium against a real coordinator: login guard (C35), pages per role, keys."""

from __future__ import annotations

import httpx
import pytest

from tests.dashboard.conftest import ADMIN, CLIENT, INTERNAL_TOKEN, OWNER, login, shot

# Anything that only a logged-in user may see; the guard must keep all of it out of the DOM.
PROTECTED = "#user-email, #workers-table, #workers-count, #jobs-table, #ledger-table, #keys-table, #logout"

LEAK_PROBE = """
window.__leaks = [];
new MutationObserver(() => {
  const el = document.querySelector('%s');
  if (el) window.__leaks.push(el.id || el.tagName);
}).observe(document, {childList: true, subtree: true});
""".replace("%s", PROTECTED)


class TestLoginGuard:
    def test_C35_fresh_browser_on_workers_is_redirected_without_protected_data(self, page):
        page.add_init_script(LEAK_PROBE)
        page.goto(page.base + "/workers")
        page.wait_for_url("**/login?next=/workers", wait_until="commit")
        page.wait_for_selector("#hydrated", state="attached")
        assert page.evaluate("window.__leaks") == []
        assert page.locator(PROTECTED).count() == 0
        shot(page, "login")

    def test_C35_admin_login_lands_on_workers_with_real_data(self, page, api):
        login(page, ADMIN, "/workers")
        workers = api.get(ADMIN, "/admin/workers")["workers"]
        count = page.locator("#workers-count")
        count.wait_for()
        assert count.inner_text().startswith(f"{len(workers)} / {len(workers)}")
        for w in workers:
            assert page.get_by_text(w["name"], exact=True).count() == 1
        assert page.locator("#user-email").inner_text() == ADMIN[0]
        shot(page, "workers-admin")

    def test_C35_logout_then_back_shows_nothing_and_old_session_is_dead(self, page, browser):
        login(page, ADMIN, "/workers")
        page.locator("#workers-count").wait_for()
        sid = next(c for c in page.context.cookies() if c["name"] == "openmesh_sid")
        page.click("#logout")
        page.wait_for_url("**/login", wait_until="commit")
        page.add_init_script(LEAK_PROBE)
        page.go_back()
        page.wait_for_url("**/login**", wait_until="commit")
        page.wait_for_timeout(1000)
        assert page.locator(PROTECTED).count() == 0
        # The session id the browser held no longer opens anything.
        other = browser.new_context()
        other.add_cookies([sid])
        p2 = other.new_page()
        p2.goto(page.base + "/workers")
        p2.wait_for_url("**/login?next=/workers", wait_until="commit")
        assert p2.locator(PROTECTED).count() == 0
        other.close()


class TestAdminPages:
    def test_jobs_and_detail(self, page, api):
        login(page, ADMIN, "/workers")
        page.click("#nav-jobs")
        page.wait_for_url("**/jobs", wait_until="commit")
        total = api.get(ADMIN, "/admin/jobs", limit=1)["total"]
        assert total > 0
        page.locator("#jobs-count").wait_for()
        assert page.locator("#jobs-count").inner_text().startswith(f"{total} ")
        shot(page, "jobs")
        first = api.get(ADMIN, "/admin/jobs", limit=1)["items"][0]
        page.locator("#jobs-table a", has_text=str(first["id"])).first.click()
        page.wait_for_url(f"**/jobs/{first['id']}", wait_until="commit")
        page.get_by_text(first["job_type"], exact=True).first.wait_for()
        shot(page, "job-detail")

    def test_enqueue_demo_updates_the_total(self, page, api):
        login(page, ADMIN, "/workers")
        page.goto(page.base + "/jobs")
        page.locator("#jobs-count").wait_for()
        before = api.get(ADMIN, "/admin/jobs", limit=1)["total"]
        page.click("#enqueue-demo")
        page.get_by_text("Enqueued").wait_for()
        after = api.get(ADMIN, "/admin/jobs", limit=1)["total"]
        assert after == before + 10
        page.wait_for_function(f"document.querySelector('#jobs-count').innerText.startsWith('{after} ')")

    def test_jobs_page_refreshes_live_after_a_new_job(self, page, api):
        login(page, ADMIN, "/workers")
        page.goto(page.base + "/jobs")
        page.locator("#jobs-count").wait_for()
        before = api.get(ADMIN, "/admin/jobs", limit=1)["total"]
        page.wait_for_function(f"document.querySelector('#jobs-count').innerText.startsWith('{before} ')")
        key = api.post(CLIENT, "/auth/api-keys", {"name": "live-refresh"}).json()["key"]
        r = httpx.post(api.gateway + "/v1/embed", json={"text": "a job that appears by itself"},
                       headers={"X-API-Key": key}, timeout=60)
        assert r.status_code == 200, r.text
        # No click, no reload: the page's own refresh shows the new verified job.
        page.wait_for_function(f"document.querySelector('#jobs-count').innerText.startsWith('{before + 1} ')")
        page.locator("#jobs-table a", has_text=str(r.json()["job_id"])).first.wait_for()

    def test_finance_matches_the_api(self, page, api):
        login(page, ADMIN, "/workers")
        page.click("#nav-finance")
        page.wait_for_url("**/finance", wait_until="commit")
        summary = api.get(ADMIN, "/admin/finance/summary")
        page.locator("#card-pool").wait_for()
        from decimal import Decimal

        shown = Decimal(page.locator("#card-pool").inner_text())
        assert shown == Decimal(summary["pool_balance_tokens"])
        assert page.locator("#card-invariant").inner_text().count("balanced") == (
            1 if summary["invariant"]["ok"] else 0
        )
        shot(page, "finance-admin")

    def test_run_emission_with_confirmation(self, page, api):
        login(page, ADMIN, "/workers")
        page.goto(page.base + "/finance")
        page.locator("#run-emission").click()
        page.get_by_role("alertdialog").get_by_role("button", name="Run emission now").click()
        page.get_by_text("Emission run").wait_for()
        status = api.get(ADMIN, "/admin/emission/status")
        assert status.get("ran_today", True)

    def test_health_page(self, page):
        login(page, ADMIN, "/workers")
        page.click("#nav-health")
        page.wait_for_url("**/health", wait_until="commit")
        page.locator("#services").get_by_text("coordinator").wait_for()
        page.locator("#ready-checks").wait_for()
        shot(page, "health")

    def test_drain_a_worker(self, page, api):
        workers = api.get(ADMIN, "/admin/workers")["workers"]
        # A registered-but-offline worker: the two real ones keep serving the tests that follow.
        target = next(w for w in workers if w["name"].startswith("gpu-") and w["status"] not in ("draining", "banned"))
        login(page, ADMIN, "/workers")
        page.locator(f"#drain-{target['id']}").click()
        dialog = page.get_by_role("alertdialog")
        dialog.locator("input[name=reason]").fill("maintenance window")
        dialog.get_by_role("button", name="Drain").click()
        page.get_by_text(f"Worker {target['id']} draining").wait_for()
        after = {w["id"]: w for w in api.get(ADMIN, "/admin/workers")["workers"]}
        assert after[target["id"]]["status"] == "draining"
        # and back: a drained worker can be resumed from the same row
        page.locator(f"#resume-{target['id']}").click()
        page.get_by_role("alertdialog").get_by_role("button", name="Resume").click()
        page.get_by_text(f"Worker {target['id']} resumed").wait_for()
        after = {w["id"]: w for w in api.get(ADMIN, "/admin/workers")["workers"]}
        assert after[target["id"]]["status"] == "offline"


class TestClient:
    def test_create_key_shown_once_then_revoke(self, page, api):
        login(page, CLIENT, "/api-keys")
        page.fill("#key-name", "browser-test-key")
        page.click("#create-key")
        key = page.locator("#new-key")
        key.wait_for()
        secret = key.inner_text()
        listed = [k for k in api.get(CLIENT, "/auth/api-keys")["api_keys"] if k["name"] == "browser-test-key"]
        assert len(listed) == 1 and secret.startswith(listed[0]["prefix"])
        check = httpx.post(
            api.base + "/internal/api-keys/check",
            json={"api_key": secret},
            headers={"X-Internal-Token": INTERNAL_TOKEN},
        )
        assert check.status_code == 200
        # The playground sends text through the real gateway and shows the verified answer and receipt.
        page.fill("#pg-key", secret)
        page.fill("#pg-text", "OpenMesh é uma rede distribuída.")
        page.click("#pg-send")
        answer = page.locator("#pg-answer")
        answer.wait_for()
        assert answer.inner_text().startswith("embedding: 384 dimensions")
        page.get_by_text('"method": "pair"').wait_for()
        shot(page, "api-keys")
        # Leaving the page forgets the secret: it is shown once.
        page.click("#nav-finance")
        page.wait_for_url("**/finance", wait_until="commit")
        page.locator("#balance-total").wait_for()
        shot(page, "finance-client")
        page.click("#nav-api-keys")
        page.wait_for_url("**/api-keys", wait_until="commit")
        page.locator("#keys-table").wait_for()
        assert page.locator("#new-key").count() == 0
        page.locator(f"#revoke-{listed[0]['id']}").click()
        page.get_by_role("alertdialog").get_by_role("button", name="Revoke").click()
        page.get_by_text(f"Key {listed[0]['id']} revoked").wait_for()
        revoked = [k for k in api.get(CLIENT, "/auth/api-keys")["api_keys"] if k["id"] == listed[0]["id"]]
        assert revoked[0]["revoked_at"]
        check = httpx.post(
            api.base + "/internal/api-keys/check",
            json={"api_key": secret},
            headers={"X-Internal-Token": INTERNAL_TOKEN},
        )
        assert check.status_code == 401
        refused = httpx.post(api.gateway + "/v1/embed", json={"text": "after revoke"}, headers={"X-API-Key": secret})
        assert refused.status_code == 401 and refused.json()["detail"] == "Invalid API key"

    def test_spend_per_key_and_day_match_the_api(self, page, api):
        key = api.post(CLIENT, "/auth/api-keys", {"name": "spend-check"}).json()["key"]
        r = httpx.post(api.gateway + "/v1/embed", json={"text": "spend"}, headers={"X-API-Key": key}, timeout=60)
        assert r.status_code == 200, r.text
        login(page, CLIENT, "/api-keys")
        page.click("#nav-finance")
        page.wait_for_url("**/finance", wait_until="commit")
        page.get_by_text("Spend per API key").wait_for()
        spend = api.get(CLIENT, "/me/spend")
        assert spend["per_key"] and spend["per_day"]
        for row in spend["per_key"]:
            cells = page.locator("tr", has_text=row["prefix"])
            assert cells.count() == 1
            assert row["amount"] in cells.inner_text() and row["name"] in cells.inner_text()
        shot(page, "finance-client")

    def test_client_cannot_open_admin_pages(self, page):
        login(page, CLIENT, "/api-keys")
        page.goto(page.base + "/jobs")
        page.wait_for_url("**/api-keys", wait_until="commit")
        assert page.locator("#jobs-table").count() == 0

    def test_register_then_land_home(self, page):
        page.goto(page.base + "/register")
        page.wait_for_selector("#hydrated", state="attached")
        page.fill("#reg-email", "new-client@dashboard.test")
        page.fill("#reg-password", "new-client-password")
        page.click("#register-submit")
        page.wait_for_url("**/api-keys", wait_until="commit")
        page.locator("#user-email").wait_for()
        assert page.locator("#user-email").inner_text() == "new-client@dashboard.test"


class TestWorkerOwner:
    def test_own_workers_and_how_to_add(self, page, api):
        login(page, OWNER, "/workers")
        mine = api.get(OWNER, "/workers")["workers"]
        page.locator("#workers-count").wait_for()
        assert page.locator("#workers-count").inner_text().startswith(f"{len(mine)} / {len(mine)}")
        page.get_by_text("openmesh worker run", exact=False).first.wait_for()
        shot(page, "workers-owner")
        page.get_by_role("button", name="Why rejected?").first.click()
        page.get_by_text("No rejections").wait_for()

    def test_earnings_per_worker_match_the_api(self, page, api):
        login(page, OWNER, "/workers")
        page.click("#nav-finance")
        page.wait_for_url("**/finance", wait_until="commit")
        page.get_by_text("Earnings per worker").wait_for()
        earned = api.get(OWNER, "/me/earnings")
        assert earned["per_worker"], "the real workers verified jobs, so their owner has rewards"
        for w in earned["per_worker"]:
            row = page.locator("tr", has_text=w["name"])
            row.first.wait_for()
            assert w["rewards"] in row.first.inner_text()
        shot(page, "finance-owner")

    def test_language_switch(self, page):
        login(page, OWNER, "/workers")
        page.locator("#workers-count").wait_for()
        page.click("#lang-pt-BR")
        page.get_by_text("Meus workers").wait_for()
        assert page.locator("#logout").inner_text() == "Sair"
        page.click("#lang-en")
        page.get_by_text("My workers").wait_for()


pytestmark = pytest.mark.browser
