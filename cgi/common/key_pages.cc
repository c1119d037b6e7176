#include "cgi/common/key_pages.h"

#include <stdexcept>

#include "cgi/common/mail_frame.h"
#include "cgi/common/mailbox.h"
#include "cgi/common/message_view.h"
#include "core/bindings/bindings.h"
#include "core/grant/cookie.h"

namespace wmk::cgi {

namespace {

// "1234 ABCD 5678 EF90 …": the first 16 hex digits in groups of four.
std::string fingerprint_start(std::string_view fpr) {
  return keys::group_fingerprint(fpr, 16);
}

Html grant_facts(const grant::GrantInfo& g) {
  return fill(R"(<dl class="headers grant-facts">
<dt>Unlocked</dt><dd class="grant-created">{{created}}</dd>
<dt>From address</dt><dd class="grant-addr">{{addr}}</dd>
<dt>Browser</dt><dd class="grant-agent">{{agent}}</dd>
<dt>Last used</dt><dd class="grant-used">{{used}}</dd>
</dl>)",
              {{"created", format_date(g.created)},
               {"addr", g.client_addr.empty() ? "(unknown)" : g.client_addr},
               {"agent", g.user_agent.empty() ? "(unknown)" : g.user_agent},
               {"used", format_date(g.last_used)}});
}

Html back_to_message(const webflow::MessageRef& ref) {
  return fill(R"(<p><a href="{{href}}">Back to the message</a></p>)", {{"href", message_url(ref)}});
}

// Under a decrypted message (after the Reply/Forward links; compose decides, under the grant, what
// may be quoted), the view's own address (GET /decrypt, valid while the grant lives)
// and the way back.
Html decrypted_actions(const webflow::MessageRef& ref) {
  const std::string folder = mail::folder_name(ref.folder);
  return fill(
      R"(<p><a href="{{self}}" data-address>Address of this decrypted view</a> (works while your key stays unlocked) · <a href="{{back}}">Back to the message</a></p>)",
      {{"self", url("/decrypt", {{"id", ref.uid}, {"folder", folder}})},
       {"back", message_url(ref)}});
}

// The overall signature state in words. Only `valid` says "valid signature".
std::string signature_state_sentence(const reader::MessageView& v) {
  std::string signer;
  std::string verified_by;  // the binding source that makes the signer the sender
  for (const auto& s : v.signatures) {
    if (s.status == reader::VerdictStatus::good) {
      signer = s.signer.empty() ? s.signer_fingerprint : s.signer;
      if (s.binding)
        verified_by = bindings::source_words(s.binding->source);
      if (s.matches_from)
        break;
    }
  }
  switch (v.signature_state) {
    case reader::SignatureState::none:
      return "Not signed.";
    case reader::SignatureState::valid:
      return "Valid signature by " + signer + ", the sender (address verified: " + verified_by +
             "), covering the whole message.";
    case reader::SignatureState::partially_signed:
      return "Signed by " + signer +
             ", but the signature covers only part of what is shown: the rest is not signed.";
    case reader::SignatureState::signer_mismatch:
      return "Signed by " + signer + ", who is not the sender named in From.";
    case reader::SignatureState::sender_unverified:
      return "Signed by " + signer +
             ". The key names the sender's address, but this server has not verified that "
             "address for this key (anyone can put any address on a key), so it is not known "
             "to be by the sender.";
    case reader::SignatureState::bad:
      return "BAD signature: the message was altered after it was signed.";
    case reader::SignatureState::unknown_key:
      return "Signed by a key that is not known or not trusted here: the signature cannot "
             "be checked.";
    case reader::SignatureState::expired:
      return "Signed with a key or certificate that has expired.";
    case reader::SignatureState::revoked:
      return "Signed with a key or certificate that has been revoked.";
    case reader::SignatureState::error:
      break;
  }
  return "The signature could not be checked.";
}

// A signature's verdict in plain words (the stable name stays in data-verdict).
const char* verdict_words(reader::VerdictStatus status) {
  switch (status) {
    case reader::VerdictStatus::good:
      return "Good signature";
    case reader::VerdictStatus::bad:
      return "BAD signature";
    case reader::VerdictStatus::unknown_key:
      return "Unknown key";
    case reader::VerdictStatus::expired_key:
      return "Expired key";
    case reader::VerdictStatus::revoked_key:
      return "Revoked key";
    case reader::VerdictStatus::error:
      break;
  }
  return "Not checked";
}

Html signature_details(const reader::MessageView& v) {
  std::vector<Html> items;
  for (const auto& s : v.signatures) {
    std::string who = s.signer.empty() ? "signer unknown" : s.signer;
    if (!s.signer_fingerprint.empty())
      who += " \u2014 " + keys::group_fingerprint(s.signer_fingerprint);
    items.push_back(
        fill(R"(<li data-verdict="{{status}}">{{words}}: {{who}}{{when}}</li>)",
             {{"status", reader::verdict_status_name(s.status)},
              {"words", verdict_words(s.status)},
              {"who", who},
              {"when", s.created > 0 ? ", signed " + format_date(s.created) : std::string()}}));
  }
  if (items.empty())
    return {};
  return fill(R"(<ul class="signature-details">{{items}}</ul>)", {{"items", join(items)}});
}

const char* protection_label(mail::Protection p) {
  switch (p) {
    case mail::Protection::pgp_mime:
      return "OpenPGP (PGP/MIME)";
    case mail::Protection::pgp_inline:
      return "OpenPGP (inline)";
    case mail::Protection::smime_enveloped:
    case mail::Protection::smime_auth_enveloped:
      return "S/MIME";
    default:
      break;
  }
  return "encrypted";
}

// The attachments of one segment: stored parts link to /attachment; decrypted ones
// link to /decrypt with the part (decrypted once for that request, under the grant).
Html segment_attachments(const Context& /*ctx*/, const webflow::MessageRef& ref,
                         const reader::Segment& seg) {
  const bool unprotected = seg.integrity == reader::Segment::Integrity::none;
  std::vector<Html> items;
  for (const auto& a : seg.attachments) {
    Html size = fill(R"(<span class="size">({{type}}, {{size}})</span>)",
                     {{"type", a.sniffed_type}, {"size", format_size(a.size)}});
    if (unprotected) {  // named only: its bytes could have been altered (EFAIL)
      items.push_back(
          fill(R"(<li>{{name}} {{size}}</li>)", {{"name", a.filename}, {"size", size}}));
      continue;
    }
    switch (a.source) {
      case reader::PartSource::message:
        items.push_back(fill(
            R"(<li><a href="{{href}}" download>{{name}}</a> {{size}}</li>)",
            {{"href",
              url("/attachment",
                  {{"id", ref.uid}, {"folder", mail::folder_name(ref.folder)}, {"part", a.id}})},
             {"name", a.filename},
             {"size", size}}));
        break;
      case reader::PartSource::decrypted:
        items.push_back(fill(R"(<li><a href="{{href}}" download>{{name}}</a> {{size}}</li>)",
                             {{"href", url("/decrypt", {{"id", ref.uid},
                                                        {"folder", mail::folder_name(ref.folder)},
                                                        {"part", a.id}})},
                              {"name", a.filename},
                              {"size", size}}));
        break;
      case reader::PartSource::signed_content:
        items.push_back(
            fill(R"(<li>{{name}} {{size}}</li>)", {{"name", a.filename}, {"size", size}}));
        break;
    }
  }
  if (items.empty())
    return {};
  return fill(
      R"(<div class="attachments"><h2>Attachments</h2>{{note}}<ul class="attachments">{{items}}</ul></div>)",
      {{"note",
        unprotected
            ? Html(
                  R"(<p>Not offered for download: without integrity protection they could have been altered.</p>)")
            : Html()},
       {"items", join(items)}});
}

}  // namespace

Html segment_body(const reader::Segment& seg) {
  // Without integrity protection the reader gives plain text only; never a frame.
  if (seg.integrity == reader::Segment::Integrity::none)
    return fill(R"(<pre class="body">{{text}}</pre>)", {{"text", seg.text}});
  switch (seg.format) {
    case mail::BodyFormat::plain:
      return fill(R"(<pre class="body">{{text}}</pre>)", {{"text", seg.text}});
    case mail::BodyFormat::html:
      // Sanitized, in the sandboxed mail frame; the indicators stay outside it.
      return html_mail_frame(seg.text);
    case mail::BodyFormat::none:
      break;
  }
  return {};
}

namespace {

Html segment_html(const Context& ctx, const webflow::MessageRef& ref, const reader::Segment& seg,
                  bool alone) {
  const bool decrypted = seg.kind == reader::Segment::Kind::decrypted;
  const bool unprotected = seg.integrity == reader::Segment::Integrity::none;
  Html label;
  if (unprotected)
    label = Html(
        R"(<p class="segment-label integrity-none"><span class="badge warning">Not integrity-protected</span> Decrypted, but this part was encrypted without integrity protection (S/MIME, AES-CBC): it may have been altered on its way to you. It is shown as plain text only, without formatting or links.</p>)");
  else if (decrypted && !alone)
    label = Html(R"(<p class="segment-label">Decrypted part</p>)");
  else if (!decrypted)
    label = Html(
        R"(<p class="segment-label">Not encrypted: this part came in the clear, beside the encrypted one. Anyone could have written or changed it.</p>)");
  return fill(
      R"(<section class="segment {{kind}}" data-part="{{part}}" data-integrity="{{integrity}}">
{{label}}{{body}}{{attachments}}
</section>)",
      {{"kind", decrypted ? "decrypted" : "plain"},
       {"part", seg.part_id},
       {"integrity", !decrypted    ? "not-encrypted"
                     : unprotected ? "none"
                                   : "checked"},
       {"label", label},
       {"body", segment_body(seg)},
       {"attachments", segment_attachments(ctx, ref, seg)}});
}

}  // namespace

std::string key_kind(keys::KeyType type) {
  return type == keys::KeyType::smime ? "S/MIME" : "OpenPGP";
}

std::string key_label(keys::KeyType type, std::string_view fingerprint) {
  return key_kind(type) + " key " + fingerprint_start(fingerprint);
}

std::string time_left(std::int64_t seconds) {
  if (seconds < 60)
    return "less than a minute left";
  return std::to_string(seconds / 60) + " min left";
}

std::string safe_return_path(std::string_view back) {
  const bool ok = back.size() >= 1 && back.size() <= 2000 && back[0] == '/' &&
                  (back.size() == 1 || (back[1] != '/' && back[1] != '\\')) &&
                  back.find('\\') == std::string_view::npos;
  if (!ok)
    return "/inbox";
  for (unsigned char c : back) {
    if (c < 0x21 || c >= 0x7f)
      return "/inbox";
  }
  return std::string(back);
}

Html key_banner(Context& ctx, std::string_view back) {
  if (!ctx.session)
    return {};
  auto unlocked = webflow::key_banner_state(ctx.app, *ctx.session);
  if (unlocked.empty())
    return {};
  std::vector<Html> items;
  for (const auto& k : unlocked) {
    items.push_back(fill(
        R"(<span class="key-state" data-key="{{fpr}}" data-seconds-left="{{secs}}">{{label}} unlocked — <span class="time-left" aria-live="off">{{left}}</span></span>)",
        {{"fpr", k.fingerprint},
         {"secs", static_cast<long long>(k.seconds_left)},
         {"label", key_label(k.type, k.fingerprint)},
         {"left", time_left(k.seconds_left)}}));
  }
  Html list;
  for (std::size_t i = 0; i < items.size(); ++i)
    list += (i == 0 ? Html() : Html("; ")) + items[i];
  return fill(R"({{list}}
<form method="post" action="/lock" class="inline">{{csrf}}<input type="hidden" name="back" value="{{back}}"><button type="submit" class="lock secondary">Lock</button></form>)",
              {{"list", list},
               {"csrf", csrf_field(ctx.session->csrf_token)},
               {"back", safe_return_path(back)}});
}

std::optional<util::SecretBuffer> request_grant_secret(Request& request) {
  return webflow::grant_secret_from_cookie(request.take_secret_cookie(kGrantCookie));
}

webflow::Client client_of(const Request& request) {
  return webflow::Client{request.client_addr(), request.user_agent()};
}

Page unlock_page(Context& ctx, const keys::KeyInfo& key, const Html& target_fields,
                 std::string_view back_url, Nav nav, std::optional<Notice> notice) {
  ctx.return_path = safe_return_path(back_url);
  Page p = ctx.page("unlock", "Unlock your key", nav);
  if (notice)
    add_notice(p, std::move(*notice));
  Html confirmation;
  if (ctx.app.config.unlock_confirmation) {
    confirmation = Html(R"(<label for="confirm">Passphrase again (confirmation)</label>
<input id="confirm" name="confirm" type="password" autocomplete="off" required>)");
  }
  std::string minutes = std::to_string(ctx.app.config.grant_idle_timeout.count() / 60);
  p.main = fill(R"(<h1>Unlock your key</h1>
<p>The server needs the passphrase of your {{label}}{{emails}}.
It stays unlocked for this login only, until you lock it, log out, or leave it unused for {{minutes}} minutes.</p>
<form method="post" action="/unlock" class="stacked unlock" autocomplete="off">
{{csrf}}{{fields}}
<label for="passphrase">Key passphrase</label>
<input id="passphrase" name="passphrase" type="password" autocomplete="off" required autofocus>
{{confirmation}}
<div class="actions"><button type="submit" name="ok" value="1">OK</button> <button type="reset" class="secondary">Clear</button></div>
</form>
<p><a href="{{back}}">Back</a></p>)",
                {{"label", key_label(key.type, key.fingerprint)},
                 {"emails", key.emails.empty() ? std::string() : " (" + key.emails.front() + ")"},
                 {"minutes", minutes},
                 {"csrf", csrf_field(ctx.live_session().csrf_token)},
                 {"fields", target_fields},
                 {"confirmation", confirmation},
                 {"back", safe_return_path(back_url)}});
  return p;
}

Page unlock_page(Context& ctx, const webflow::MessageRef& ref, const keys::KeyInfo& key,
                 std::optional<Notice> notice) {
  return unlock_page(ctx, key, message_fields(ref), message_url(ref), message_nav(ref),
                     std::move(notice));
}

std::unique_ptr<webflow::KeySession> key_session(Context& ctx) {
  return std::make_unique<webflow::KeySession>(ctx.app, ctx.live_session(),
                                               request_grant_secret(ctx.request),
                                               client_of(ctx.request), &ctx.mailboxes);
}

Result<webflow::UnlockOutcome> unlock_from_form(Context& ctx, webflow::KeySession& keys,
                                                const keys::KeyInfo& key) {
  auto passphrase = ctx.request.take_secret("passphrase");
  auto confirmation = ctx.request.take_secret("confirm");
  const auto mode = ctx.app.config.unlock_confirmation ? webflow::Confirmation::required
                                                       : webflow::Confirmation::not_asked;
  const util::SecretBuffer none;
  auto outcome = keys.unlock(key, passphrase ? *passphrase : none, confirmation, mode);
  if (outcome) {
    if (auto* unlocked = std::get_if<webflow::Unlocked>(&*outcome))
      ctx.session = unlocked->session;
  }
  return outcome;
}

void set_unlock_cookies(Response& r, const webflow::Unlocked& unlocked) {
  if (!unlocked.session_token.empty())
    r.add_cookie(SetCookie::session_secret(kSessionCookie, unlocked.session_token));
  if (unlocked.new_cookie) {
    r.add_cookie(
        SetCookie::session_secret(kGrantCookie, grant::encode_grant_cookie(unlocked.grant_secret)));
  }
}

Response in_use_response(Context& ctx, const webflow::MessageRef& ref,
                         const webflow::InUseElsewhere& in_use) {
  ctx.return_path = message_url(ref);
  Page p = ctx.page("in-use", "Key in use elsewhere", message_nav(ref));
  p.main = fill(R"(<h1>Your key is in use elsewhere</h1>
<p class="in-use-summary">Your {{label}} is unlocked in another session, shown below. A key is only ever unlocked in one session at a time.</p>
{{facts}}
<p>If that was you in another browser, or a browser that crashed, press Decrypt to stop the key's use there and unlock it here (you are asked to confirm first). Otherwise, log in there and lock it, or wait until it times out.</p>
<form method="post" action="/stop-other" class="inline">
{{csrf}}{{fields}}
<button type="submit" class="decrypt">Decrypt</button>
</form>
{{back}})",
                {{"label", key_label(in_use.key.type, in_use.key.fingerprint)},
                 {"facts", grant_facts(in_use.other)},
                 {"csrf", csrf_field(ctx.live_session().csrf_token)},
                 {"fields", message_fields(ref)},
                 {"back", back_to_message(ref)}});
  return page_response(409, p);
}

Response confirm_stop_response(Context& ctx, const webflow::MessageRef& ref,
                               const keys::KeyInfo& key, const grant::GrantInfo& other) {
  ctx.return_path = message_url(ref);
  Page p = ctx.page("confirm-stop", "Stop the key's use elsewhere?", message_nav(ref));
  p.main = fill(R"(<h1>Stop the key's use in the other session?</h1>
<p>Your {{label}} is unlocked in the session below. That session will no longer be able to decrypt or sign, and will be told so at its next request.</p>
{{facts}}
<form method="post" action="/stop-other" class="inline">
{{csrf}}{{fields}}<input type="hidden" name="grant" value="{{grant}}"><input type="hidden" name="ok" value="1">
<div class="actions"><button type="submit" class="danger">OK</button> <a class="button secondary" href="{{cancel}}">Cancel</a></div>
</form>)",
                {{"label", key_label(key.type, key.fingerprint)},
                 {"facts", grant_facts(other)},
                 {"csrf", csrf_field(ctx.live_session().csrf_token)},
                 {"fields", message_fields(ref)},
                 {"grant", other.id},
                 {"cancel", message_url(ref)}});
  return page_response(200, p);
}

Html signature_indicator(const reader::MessageView& v) {
  const bool signature_ok = v.signature_state == reader::SignatureState::valid;
  const bool unsigned_ = v.signature_state == reader::SignatureState::none;
  return fill(
      R"(<li class="indicator {{sig_cls}}" data-signature-state="{{state}}">{{sig}}{{details}}</li>)",
      {{"sig_cls", signature_ok ? "signature-good"
                   : unsigned_  ? "unsigned"
                                : "signature-bad"},
       {"state", reader::signature_state_name(v.signature_state)},
       {"sig", signature_state_sentence(v)},
       {"details", signature_details(v)}});
}

Response decrypted_response(Context& ctx, const webflow::MessageRef& ref,
                            const webflow::Decrypted& d) {
  const auto& v = d.view;
  ctx.return_path = message_url(ref);
  Page p = ctx.page("decrypted", "Message", message_nav(ref));
  p.title = d.envelope.subject.empty() ? "(no subject)" : d.envelope.subject;

  Html indicators = fill(
      R"(<li class="indicator encrypted"><span class="badge encrypted">Decrypted</span> {{how}} with your {{key}}{{cipher}}; {{integrity}}</li>
{{signature}})",
      {{"how", protection_label(v.protection)},
       {"key", key_label(d.key.type, d.key.fingerprint)},
       {"cipher", v.cipher.empty() ? std::string() : " (" + v.cipher + ")"},
       {"integrity", v.integrity_protected
                         ? "integrity checked."
                         : "NOT integrity-protected: see the marked part below, which may "
                           "have been altered."},
       {"signature", signature_indicator(v)}});
  if (v.segments.size() > 1) {
    indicators += Html(
        R"(<li class="indicator mixed">This message has several parts, encrypted or not: each part is shown on its own and marked.</li>)");
  }
  if (v.key_expired) {
    indicators += fill(
        R"(<li class="indicator key-expired">Your {{key}} has expired{{when}}. It still opens your mail, but it can no longer sign.</li>)",
        {{"key", key_label(d.key.type, d.key.fingerprint)},
         {"when", d.key.expires ? " (on " + format_date(*d.key.expires) + ")" : std::string()}});
  }

  std::vector<Html> segments;
  for (const auto& seg : v.segments)
    segments.push_back(segment_html(ctx, ref, seg, v.segments.size() == 1));
  // Keys attached inside the encryption, from this one decryption.
  segments.push_back(key_offers_section(
      ctx, ref, webflow::decrypted_key_offers(ctx.app, ctx.live_session(), d), "/decrypt"));

  p.main = fill(R"(<article class="message decrypted">
<h1>{{subject}}</h1>
<dl class="headers">{{headers}}</dl>
<ul class="indicators" aria-label="Protection">{{indicators}}</ul>
{{segments}}
</article>
{{back}})",
                {{"subject", p.title},
                 {"headers", header_rows(d.envelope)},
                 {"indicators", indicators},
                 {"segments", join(segments)},
                 {"back", answer_links(ref, d.envelope) + decrypted_actions(ref)}});
  Response r = page_response(200, p);
  // Nothing decrypted may be kept by the browser, a proxy or the back-forward cache.
  r.set_header("Cache-Control", "no-store");
  return r;
}

Response decrypted_part_response(const webflow::DecryptedPart& part) {
  Response r =
      Response::download(part.content.bytes, part.content.sniffed_type, part.content.filename);
  r.set_header("Cache-Control", "no-store");
  return r;
}

Response outcome_response(Context& ctx, const webflow::MessageRef& ref,
                          webflow::DecryptOutcome& outcome) {
  if (auto* d = std::get_if<webflow::Decrypted>(&outcome))
    return decrypted_response(ctx, ref, *d);
  if (auto* in_use = std::get_if<webflow::InUseElsewhere>(&outcome))
    return in_use_response(ctx, ref, *in_use);
  auto& need = std::get<webflow::NeedUnlock>(outcome);
  std::optional<Notice> notice;
  if (!need.reason.empty())
    notice = Notice{Notice::Kind::info, need.reason};
  return page_response(200, unlock_page(ctx, ref, need.key, std::move(notice)));
}

Response flow_error_response(Context& ctx, const webflow::MessageRef& ref, const Error& error) {
  auto on_message = [&](int status, std::string text) {
    return message_page(ctx, ref, status, Notice{Notice::Kind::error, std::move(text)});
  };
  switch (error.code) {
    case Errc::not_found:
    case Errc::invalid_argument:
      return on_message(404, "This message cannot be decrypted. " +
                                 reader::failure_sentence(reader::failure_of(error)) + " (" +
                                 error.message + ")");
    case Errc::unsupported:
      return on_message(400, "This message is not encrypted.");
    case Errc::crypto:
    case Errc::corrupt:
      // Why, in the reader's words: no integrity protection, not for your keys, damaged.
      return on_message(400, "This message could not be decrypted. " +
                                 reader::failure_sentence(reader::failure_of(error)) + " (" +
                                 error.message + ")");
    case Errc::expired:
    case Errc::revoked:
    case Errc::disabled:
      return on_message(403, "Your key cannot be used: " + error.message + ".");
    case Errc::locked_out:
      return on_message(429, "This key is locked for a while: " + error.message + ".");
    case Errc::busy:
      return on_message(503, "Not tried: " + error.message + ".");
    case Errc::conflict:
      return on_message(409, "The key was busy: " + error.message + ".");
    default:
      break;
  }
  throw std::runtime_error("key flow failed: " + error.message);
}

}  // namespace wmk::cgi
