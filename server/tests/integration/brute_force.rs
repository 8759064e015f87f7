//! Password guessing on the end-user sign-in page over HTTP. Failures slow
//! down an account and a client address, and blocked attempts look the
//! same for existing and unknown accounts. Blocks end, a success clears the
//! account counter, and instances on one database share the counters.
//!
//! The servers run with a base delay of 4 seconds and a cap of 8. Blocks
//! end at a whole second, so each one lasts more than 3 seconds, enough
//! for the requests right after a failure to meet it. The tests wait the
//! blocks out for real. Each test sends from its own loopback addresses
//! (127.0.0.x), so the server sees distinct client addresses.

use crate::browser::*;
use crate::common::TestServer;
use app::ssr::entities::sign_in_throttle;
use app::ssr::throttle::{Attempt, Realm};
use sea_orm::EntityTrait;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// Block after the first failure beyond the allowance, in seconds.
const DELAY_SECS: i64 = 4;
/// Longest block, in seconds.
const MAX_DELAY_SECS: i64 = 8;
/// Failures of one account that cause no block (the default policy).
const FREE_ACCOUNT_FAILURES: usize = 5;
/// Failures from one address that cause no block (the default policy).
const FREE_ADDRESS_FAILURES: usize = 20;
/// Existing user of these tests.
const USER: &str = "ada.lovelace";
/// A login that no account has.
const UNKNOWN: &str = "nobody.known";
/// A password that no account has.
const WRONG_PASSWORD: &str = "wrong password 1";

async fn start() -> TestServer {
    TestServer::start_with(|config| {
        config.sign_in_delay_secs = DELAY_SECS;
        config.sign_in_max_delay_secs = MAX_DELAY_SECS;
    })
    .await
}

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// A browser at one client address with an open sign-in form.
struct SignInForm<'a> {
    browser: Browser<'a>,
    interaction: String,
    csrf: String,
}

/// Starts an authorization request for `client_id` from `source` and
/// opens the sign-in page it leads to.
async fn open_sign_in<'a>(server: &'a TestServer, client_id: &str, source: IpAddr) -> SignInForm<'a> {
    let mut browser = Browser::with_client(server, TestServer::client_from(source));
    let path = authorize_path(&[
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", PLUGIN_CALLBACK),
        ("scope", "openid"),
        ("state", "s"),
    ]);
    let response = browser.get(&path).await;
    assert_eq!(response.status(), 303, "the authorization request goes to sign-in");
    let page = browser.get(&location(&response)).await;
    assert_eq!(page.status(), 200, "the sign-in page opens");
    let html = page.text().await.unwrap();
    SignInForm {
        interaction: input_value(&html, "interaction"),
        csrf: input_value(&html, "csrf_token"),
        browser,
    }
}

/// A sign-in response reduced to what a client can compare: the status,
/// `Retry-After`, and the body with the interaction, CSRF token and typed
/// login replaced by placeholders.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    retry_after: Option<i64>,
    body: String,
}

impl SignInForm<'_> {
    async fn submit(&mut self, login: &str, password: &str) -> reqwest::Response {
        let fields = [
            ("interaction", self.interaction.as_str()),
            ("csrf_token", self.csrf.as_str()),
            ("login", login),
            ("password", password),
        ];
        self.browser.post_form("/sign-in", &fields).await
    }

    async fn answer(&mut self, login: &str, password: &str) -> Answer {
        let response = self.submit(login, password).await;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|value| value.to_str().unwrap().parse::<i64>().expect("Retry-After is in seconds"));
        let body = response
            .text()
            .await
            .unwrap()
            .replace(&self.interaction, "INTERACTION")
            .replace(&self.csrf, "CSRF")
            .replace(&format!("value=\"{login}\""), "value=\"LOGIN\"");
        Answer {
            status,
            retry_after,
            body,
        }
    }
}

/// Asserts a sign-in that went through: a redirect to the callback with a
/// code.
fn assert_signed_in(response: &reqwest::Response) {
    assert_eq!(response.status(), 303, "the sign-in succeeds");
    let target = location(response);
    assert_eq!(without_query(&target), PLUGIN_CALLBACK);
    assert!(query_of(&target).contains_key("code"), "the callback carries a code");
}

/// Asserts a blocked attempt: 429, a `Retry-After` of at most `max_secs`,
/// and the wait message on the sign-in page.
fn assert_blocked(answer: &Answer, max_secs: i64) {
    assert_eq!(answer.status, 429, "the attempt is blocked");
    let retry_after = answer.retry_after.expect("a blocked attempt has Retry-After");
    assert!(
        (1..=max_secs).contains(&retry_after),
        "Retry-After {retry_after} is between 1 and {max_secs}"
    );
    assert!(answer.body.contains("Too many failed sign-ins. Wait 1 minute, then try again."));
    assert!(!answer.body.contains("incorrect"), "a blocked attempt does not judge the password");
}

/// Waits until a block announced with `retry_after` seconds has ended.
async fn wait_out(retry_after: Option<i64>) {
    let seconds = retry_after.expect("a blocked attempt has Retry-After");
    tokio::time::sleep(Duration::from_secs(seconds as u64) + Duration::from_millis(200)).await;
}

/// Checks the response to wrong password number `attempt` in a row: the
/// allowance and the failure after it are checked, later ones are blocked.
fn assert_wrong_password_answer(attempt: usize, answer: &Answer) {
    if attempt <= FREE_ACCOUNT_FAILURES + 1 {
        assert_eq!(answer.status, 400, "attempt {attempt} is checked and fails");
        assert!(answer.retry_after.is_none());
        assert!(answer.body.contains("The user name, email or password is incorrect."));
    } else {
        assert_blocked(answer, DELAY_SECS);
    }
}

async fn stored_failures(server: &TestServer, key: String) -> Option<i32> {
    sign_in_throttle::Entity::find_by_id(key)
        .one(server.db())
        .await
        .expect("query sign_in_throttles")
        .map(|row| row.failures)
}

fn account_key(login: &str) -> String {
    Attempt {
        realm: Realm::User,
        login,
        address: loopback(1),
    }
    .account_key()
}

fn address_key(source: IpAddr) -> String {
    Attempt {
        realm: Realm::User,
        login: "",
        address: source,
    }
    .address_key()
}

#[tokio::test]
async fn thirty_wrong_passwords_are_slowed_down() {
    let server = start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    create_user(&server, USER, None).await;

    let mut known = open_sign_in(&server, &client, loopback(2)).await;
    let mut unknown = open_sign_in(&server, &client, loopback(3)).await;
    // Alternating, so that both blocks start within one password check.
    for attempt in 1..=30 {
        let known_answer = known.answer(USER, WRONG_PASSWORD).await;
        let unknown_answer = unknown.answer(UNKNOWN, WRONG_PASSWORD).await;
        assert_wrong_password_answer(attempt, &known_answer);
        assert_wrong_password_answer(attempt, &unknown_answer);
        assert_eq!(known_answer.status, unknown_answer.status);
        assert_eq!(known_answer.body, unknown_answer.body, "attempt {attempt} looks the same");
    }
    // Blocked attempts were not counted.
    let allowance_and_one = (FREE_ACCOUNT_FAILURES + 1) as i32;
    assert_eq!(stored_failures(&server, account_key(USER)).await, Some(allowance_and_one));
    assert_eq!(stored_failures(&server, account_key(UNKNOWN)).await, Some(allowance_and_one));

    // While blocked, the right password is refused without being checked,
    // and the response is the one an unknown account gets.
    let right = known.answer(USER, PASSWORD).await;
    let unknown_right = unknown.answer(UNKNOWN, PASSWORD).await;
    assert_blocked(&right, DELAY_SECS);
    assert_blocked(&unknown_right, DELAY_SECS);
    assert_eq!(right.status, unknown_right.status);
    assert_eq!(right.body, unknown_right.body);
    assert!(known.browser.last_set_cookies.is_empty(), "no session starts");
    // The account is blocked for every address, not just the guessing one.
    let mut elsewhere = open_sign_in(&server, &client, loopback(4)).await;
    assert_blocked(&elsewhere.answer(USER, PASSWORD).await, DELAY_SECS);
    assert_eq!(stored_failures(&server, account_key(USER)).await, Some(allowance_and_one));

    // Once the block ends, the next failure blocks for longer.
    wait_out(right.retry_after).await;
    let failure = known.answer(USER, WRONG_PASSWORD).await;
    assert_eq!(failure.status, 400, "after the block the password is checked again");
    let longer = known.answer(USER, PASSWORD).await;
    assert_blocked(&longer, MAX_DELAY_SECS);
    assert!(
        longer.retry_after.unwrap() > DELAY_SECS,
        "the second block ({:?} s) is longer than the first ({DELAY_SECS} s)",
        longer.retry_after
    );

    // Once that one ends too, the right password works.
    wait_out(longer.retry_after).await;
    let response = known.submit(USER, PASSWORD).await;
    assert_signed_in(&response);
    assert_eq!(stored_failures(&server, account_key(USER)).await, None);
}

#[tokio::test]
async fn many_accounts_from_one_address_are_throttled() {
    let server = start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    create_user(&server, USER, None).await;
    let guesser = loopback(5);

    let mut form = open_sign_in(&server, &client, guesser).await;
    for index in 0..=FREE_ADDRESS_FAILURES {
        let login = format!("guess-{index}");
        let answer = form.answer(&login, WRONG_PASSWORD).await;
        assert_eq!(answer.status, 400, "failure {} from the address is checked", index + 1);
    }
    let next_account = form.answer("guess-next", WRONG_PASSWORD).await;
    assert_blocked(&next_account, DELAY_SECS);
    let right = form.answer(USER, PASSWORD).await;
    assert_blocked(&right, DELAY_SECS);
    assert_eq!(
        stored_failures(&server, address_key(guesser)).await,
        Some(FREE_ADDRESS_FAILURES as i32 + 1)
    );
    // Each account saw one failure, far below its own allowance.
    assert_eq!(stored_failures(&server, account_key("guess-0")).await, Some(1));
    assert_eq!(stored_failures(&server, account_key(USER)).await, None);

    // Another address is not affected.
    let mut other = open_sign_in(&server, &client, loopback(6)).await;
    assert_signed_in(&other.submit(USER, PASSWORD).await);

    // Registration is not throttled.
    let mut newcomer = open_sign_in(&server, &client, guesser).await;
    let register_path = format!("/register?interaction={}", newcomer.interaction);
    assert_eq!(newcomer.browser.get(&register_path).await.status(), 200);
    let fields = [
        ("interaction", newcomer.interaction.as_str()),
        ("csrf_token", newcomer.csrf.as_str()),
        ("username", "grace"),
        ("email", ""),
        ("password", "a long enough secret"),
        ("password_confirmation", "a long enough secret"),
    ];
    let response = newcomer.browser.post_form("/register", &fields).await;
    assert_signed_in(&response);
}

#[tokio::test]
async fn success_clears_account_counter() {
    let server = start().await;
    let client = plugin_app(&server, &[PLUGIN_CALLBACK], true).await;
    create_user(&server, USER, None).await;
    let source = loopback(7);

    let mut first = open_sign_in(&server, &client, source).await;
    for attempt in 1..=FREE_ACCOUNT_FAILURES {
        let answer = first.answer(USER, WRONG_PASSWORD).await;
        assert_eq!(answer.status, 400, "attempt {attempt} fails");
    }
    assert_eq!(
        stored_failures(&server, account_key(USER)).await,
        Some(FREE_ACCOUNT_FAILURES as i32)
    );
    assert_signed_in(&first.submit(USER, PASSWORD).await);
    assert_eq!(stored_failures(&server, account_key(USER)).await, None);
    // The address keeps its count: an attacker cannot clear it by
    // signing in to an account of their own.
    assert_eq!(
        stored_failures(&server, address_key(source)).await,
        Some(FREE_ACCOUNT_FAILURES as i32)
    );

    // A whole new allowance: without the reset, the second of these
    // failures would be blocked.
    let mut second = open_sign_in(&server, &client, source).await;
    for attempt in 1..=FREE_ACCOUNT_FAILURES {
        let answer = second.answer(USER, WRONG_PASSWORD).await;
        assert_eq!(answer.status, 400, "attempt {attempt} after the success fails");
    }
    assert_signed_in(&second.submit(USER, PASSWORD).await);
}

#[tokio::test]
async fn failures_on_one_instance_block_another() {
    let first = start().await;
    let second = TestServer::start_beside(&first).await;
    let client = plugin_app(&first, &[PLUGIN_CALLBACK], true).await;
    create_user(&first, USER, None).await;

    let mut at_first = open_sign_in(&first, &client, loopback(9)).await;
    for attempt in 1..=FREE_ACCOUNT_FAILURES + 1 {
        let answer = at_first.answer(USER, WRONG_PASSWORD).await;
        assert_eq!(answer.status, 400, "attempt {attempt} at the first instance fails");
    }
    assert_blocked(&at_first.answer(USER, PASSWORD).await, DELAY_SECS);

    // From another address, at the other instance.
    let mut at_second = open_sign_in(&second, &client, loopback(10)).await;
    let blocked = at_second.answer(USER, PASSWORD).await;
    assert_blocked(&blocked, DELAY_SECS);

    wait_out(blocked.retry_after).await;
    assert_signed_in(&at_second.submit(USER, PASSWORD).await);
    assert_eq!(stored_failures(&first, account_key(USER)).await, None);
}
