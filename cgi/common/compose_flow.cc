#include "cgi/common/compose_flow.h"

#include <algorithm>
#include <cctype>

#include "cgi/common/key_pages.h"
#include "core/auth/users.h"
#include "core/mail/drafts.h"
#include "core/mail/mime.h"
#include "core/util/encoding.h"
#include "core/webflow/flow.h"

namespace wmk::cgi {

namespace {

// Longest part of the raw message shown on the review page.
constexpr std::size_t kMaxRawShown = 256 * 1024;
// The most attachments one message carries.
constexpr std::size_t kMaxAttachments = 50;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Html checked(bool on) {
  return on ? Html(" checked") : Html();
}

std::string technology_title(mail::Technology t) {
  return t == mail::Technology::smime ? "S/MIME" : "OpenPGP";
}

std::string address_list_text(const std::vector<mail::Address>& list) {
  std::string out;
  for (const auto& a : list)
    out += (out.empty() ? "" : ", ") + a.display();
  return out;
}

std::optional<mail::Technology> technology_from(std::string_view text) {
  if (text == "openpgp")
    return mail::Technology::openpgp;
  if (text == "smime")
    return mail::Technology::smime;
  return std::nullopt;
}

bool flag_field(const Request& r, std::string_view name) {
  return r.field(name) == "1";
}

Response sent_page(ComposeSession& cs, const mail::SentMessage& sent);
Response send_failed(ComposeSession& cs, const Error& e, const std::string& id);

}  // namespace

const char* after_unlock_name(AfterUnlock a) {
  switch (a) {
    case AfterUnlock::sign:
      return "sign";
    case AfterUnlock::edit:
      return "edit";
    case AfterUnlock::send:
      break;
  }
  return "send";
}

std::optional<AfterUnlock> after_unlock_from(std::string_view text) {
  for (auto a : {AfterUnlock::sign, AfterUnlock::edit, AfterUnlock::send}) {
    if (text == after_unlock_name(a))
      return a;
  }
  return std::nullopt;
}

// ---- ComposeSession

Result<std::unique_ptr<ComposeSession>> ComposeSession::open(Context& ctx) {
  auto box = UserMailbox::open(ctx.app, ctx.mailboxes, ctx.live_session());
  if (!box)
    return box.error();
  return std::make_unique<ComposeSession>(ctx, std::move(box).value());
}

ComposeSession::ComposeSession(Context& ctx, std::unique_ptr<UserMailbox> box)
    : ctx_(ctx),
      box_(std::move(box)),
      keys_(key_session(ctx)),
      contacts_(ctx.app, keys_->keys(),
                keys::Actor{ctx.live_session().login, ctx.live_session().short_id,
                            ctx.live_session().client_addr}),
      transport_(ctx.app.config.sendmail),
      outbox_(box_->mailbox(), keys_->keys(), transport_, *ctx.app.clock) {
  outbox_.use_contacts(contacts_.recipient_keys(ctx.live_session().user_id));
  outbox_.set_autocrypt(ctx.app.config.autocrypt ? mail::AutocryptHeader::on
                                                 : mail::AutocryptHeader::off);
}

Response ComposeSession::finish(Response r) {
  if (unlocked_) {
    set_unlock_cookies(r, *unlocked_);
    unlocked_.reset();
  }
  return r;
}

std::variant<keys::UnlockedKey, Response> ComposeSession::open_key(const keys::KeyInfo& key,
                                                                   const std::string& draft_id,
                                                                   AfterUnlock after) {
  auto opened = keys_->open(key);
  if (!opened)
    return finish(error_response(opened.code() == Errc::not_found ? 404 : 500,
                                 "Your key cannot be used: " + opened.error().message,
                                 ctx_.viewer()));
  if (auto* in_use_elsewhere = std::get_if<webflow::InUseElsewhere>(&*opened))
    return in_use(*in_use_elsewhere);
  if (auto* need = std::get_if<webflow::NeedUnlock>(&*opened)) {
    std::optional<Notice> n;
    if (!need->reason.empty())
      n = Notice{Notice::Kind::info, need->reason};
    return unlock_page(200, key, draft_id, after, n);
  }
  return std::get<keys::UnlockedKey>(std::move(*opened));
}

Response ComposeSession::in_use(const webflow::InUseElsewhere& in_use) {
  Page p = page("in-use", "Key in use elsewhere");
  p.main = fill(R"(<h1>Key in use elsewhere</h1>
<p>Your key is unlocked in another session (since {{since}}, from {{from}}). Lock it there, or stop its use there from a message's Decrypt button. Your draft is kept in <a href="/inbox?folder=Drafts">Drafts</a>.</p>)",
                {{"since", format_date(in_use.other.created)}, {"from", in_use.other.client_addr}});
  return finish(page_response(409, p));
}

Page ComposeSession::page(std::string name, std::string title) {
  // The key banner comes with the page (Context::page).
  return ctx_.page(std::move(name), std::move(title), Nav::compose);
}

Html ComposeSession::key_panels(const mail::Draft& d) {
  Html out;
  if (!lookups_.empty()) {
    std::vector<Html> lines;
    for (const auto& l : lookups_) {
      using O = KeyLookupLine::Outcome;
      const char* result = l.outcome == O::found       ? "found"
                           : l.outcome == O::not_found ? "not-found"
                                                       : "error";
      Html what =
          l.outcome == O::found
              ? fill(
                    R"(found key <code class="fingerprint">{{fpr}}</code>, now bound to this address (source: WKD))",
                    {{"fpr", l.text}})
          : l.outcome == O::not_found ? fill(R"(not found: {{why}})", {{"why", l.text}})
                                      : fill(R"(error: {{why}})", {{"why", l.text}});
      lines.push_back(fill(
          R"(<li data-address="{{a}}" data-result="{{r}}"><strong>{{a}}</strong>: {{what}}</li>)",
          {{"a", l.address}, {"r", result}, {"what", what}}));
    }
    out += fill(R"(<section class="key-lookup" aria-label="Key lookup">
<h2>Key lookup (WKD)</h2>
<ul>{{lines}}</ul>
</section>)",
                {{"lines", join(lines)}});
  }
  if (!d.encrypt || mail::recipients(d).empty())
    return out;
  auto missing = outbox_.missing_keys(d);
  if (!missing) {
    out += fill(
        R"(<p class="notice error" role="alert">The recipients' keys could not be checked: {{why}}</p>)",
        {{"why", missing.error().message}});
    return out;
  }
  if (missing->empty())
    return out;
  std::vector<Html> items;
  bool others = false;
  for (const auto& m : *missing) {
    others = others || !m.is_sender;
    items.push_back(fill(
        R"(<li data-address="{{a}}" data-reason="{{reason}}"><strong>{{a}}</strong>{{you}}: {{why}}</li>)",
        {{"a", m.address},
         {"reason", mail::missing_key_reason_name(m.reason)},
         {"you", m.is_sender ? Html(" (you)") : Html()},
         {"why", m.words}}));
  }
  Html lookup;
  if (others && d.technology == mail::Technology::openpgp)
    lookup = Html(
        R"(<p>Their domains may publish their keys (Web Key Directory). A lookup takes at most a few seconds; keys it finds are added to your correspondents' keys, bound to the address looked up.</p>
<button type="submit" name="action" value="lookup">Look up their keys</button>)");
  else if (others)
    lookup = Html(
        R"(<p>S/MIME certificates are not published for lookup: import the certificate on the <a href="/keys">Keys</a> page, or it is collected from a validly signed message of theirs.</p>)");
  out += fill(
      R"(<section class="missing-keys" aria-label="Recipients without a key" data-missing="{{n}}">
<h2>Not encrypted to these addresses</h2>
<ul>{{items}}</ul>
<p>Nothing is sent while encryption is chosen and an address has no usable key. To send it unencrypted, untick Encrypt: then it goes in the clear, to everyone.</p>
{{lookup}}
</section>)",
      {{"n", static_cast<unsigned long>(missing->size())},
       {"items", join(items)},
       {"lookup", lookup}});
  return out;
}

Response ComposeSession::compose(int status, const mail::Draft& d, const std::string& draft_id,
                                 std::optional<Notice> notice) {
  Page p = page("compose", d.subject.empty() ? "New message" : d.subject);
  if (notice)
    p.notice = notice;
  const auto& user = box_->user();
  std::vector<Html> from_options;
  for (const auto& e : user.emails) {
    bool sel = lower(e) == lower(d.from.address);
    from_options.push_back(fill(R"(<option value="{{v}}"{{sel}}>{{v}}</option>)",
                                {{"v", e}, {"sel", sel ? Html(" selected") : Html()}}));
  }
  std::vector<Html> kept;
  for (std::size_t i = 0; i < d.attachments.size(); ++i) {
    const auto& a = d.attachments[i];
    kept.push_back(fill(
        R"(<li><label><input type="checkbox" name="keep" value="{{i}}" checked> {{name}} <span class="size">({{type}}, {{size}})</span></label></li>)",
        {{"i", static_cast<unsigned long>(i)},
         {"name", a.filename.empty() ? "(no name)" : a.filename},
         {"type", a.content_type},
         {"size", format_size(a.bytes.size())}}));
  }
  Html kept_list;
  if (!kept.empty())
    kept_list = fill(R"(<ul class="attachments">{{items}}</ul>)", {{"items", join(kept)}});
  Html reply_guard = fill(
      R"(<input type="hidden" name="quote" value="{{quote}}"><input type="hidden" name="quote_signer" value="{{signer}}">)",
      {{"quote", mail::decrypted_quote_name(d.decrypted_quote)}, {"signer", d.quote_signer}});
  if (d.decrypted_quote == mail::DecryptedQuote::to_signer) {
    reply_guard += fill(
        R"(<p class="notice quote-guard" role="note">The text quoted below was decrypted and goes, without asking, only to its signer {{signer}} and to you.
<label><input type="checkbox" name="quote_ok" value="1"> Other recipients I add may read the decrypted text too</label></p>)",
        {{"signer", d.quote_signer.empty() ? std::string("(none)") : d.quote_signer}});
  }
  if (d.original_encrypted) {
    reply_guard += fill(
        R"(<input type="hidden" name="original_encrypted" value="1">
<p class="notice" role="note">This message answers an encrypted message, so it is encrypted by default.
<label><input type="checkbox" name="plain_ok" value="1"{{plain}}> Send it unencrypted all the same (any quoted text leaves in clear)</label></p>)",
        {{"plain", checked(d.unencrypted_reply_ok)}});
  }
  std::string references;
  for (const auto& r : d.references)
    references += (references.empty() ? "" : " ") + r;
  auto has_key = [&](mail::Technology t) {
    return outbox_.sender_key(d.from.address, t).ok() ? Html("") : Html(" (no key)");
  };
  // The Sign button looks different while the signing key is unlocked in this session
  // (DESIGN flow 4), as the Decrypt button does.
  bool sign_unlocked = false;
  if (auto key = outbox_.sender_key(d.from.address, d.technology)) {
    for (const auto& k : webflow::key_banner_state(ctx_.app, ctx_.live_session()))
      sign_unlocked = sign_unlocked || k.fingerprint == key->fingerprint;
  }
  Html keys_panel = key_panels(d);
  p.main = fill(
      R"(<h1>{{heading}}</h1>
<form method="post" action="/compose" enctype="multipart/form-data" class="stacked compose">
{{csrf}}<input type="hidden" name="draft" value="{{draft}}">
<input type="hidden" name="in_reply_to" value="{{irt}}"><input type="hidden" name="references" value="{{refs}}">
<label for="from">From</label>
<select id="from" name="from">{{from}}</select>
<label for="to">To</label>
<input id="to" name="to" type="text" value="{{to}}" autocomplete="off" spellcheck="false">
<label for="cc">Cc</label>
<input id="cc" name="cc" type="text" value="{{cc}}" autocomplete="off" spellcheck="false">
<label for="subject">Subject</label>
<input id="subject" name="subject" type="text" value="{{subject}}">
<label for="body">Message</label>
<textarea id="body" name="body" rows="16">
{{body}}</textarea>
<fieldset><legend>Attachments</legend>
{{kept}}
<label for="attachment">Add files</label>
<input id="attachment" type="file" name="attachment" multiple>
<p class="hint">At most {{limit}} per file. The type is read from the file itself.</p>
</fieldset>
<fieldset><legend>Protection</legend>
<label><input type="checkbox" name="sign" value="1"{{sign}}> Sign</label>
<label><input type="checkbox" name="encrypt" value="1"{{encrypt}}> Encrypt to every recipient (and to me)</label>
<label><input type="radio" name="kind" value="openpgp"{{pgp}}> OpenPGP{{pgp_key}}</label>
<label><input type="radio" name="kind" value="smime"{{smime}}> S/MIME{{smime_key}}</label>
{{reply_guard}}
</fieldset>
{{keys_panel}}
<div class="actions">
<button type="submit" name="action" value="send">Send</button>
<button type="submit" name="action" value="sign" class="{{sign_class}}" data-key-state="{{sign_state}}">{{sign_label}}</button>
<button type="submit" name="action" value="encrypt">Encrypt…</button>
<button type="submit" name="action" value="save" class="secondary">Save draft</button>
</div>
</form>)",
      {{"heading", draft_id.empty() ? "New message" : "Draft"},
       {"csrf", csrf_field(ctx_.live_session().csrf_token)},
       {"draft", draft_id},
       {"irt", d.in_reply_to},
       {"refs", references},
       {"from", join(from_options)},
       {"to", mail::format_address_field(d.to)},
       {"cc", mail::format_address_field(d.cc)},
       {"subject", d.subject},
       {"body", d.body},
       {"kept", kept_list},
       {"limit", format_size(ctx_.app.config.attachment_max_bytes)},
       {"sign", checked(d.sign)},
       {"encrypt", checked(d.encrypt)},
       {"pgp", checked(d.technology == mail::Technology::openpgp)},
       {"smime", checked(d.technology == mail::Technology::smime)},
       {"pgp_key", has_key(mail::Technology::openpgp)},
       {"smime_key", has_key(mail::Technology::smime)},
       {"reply_guard", reply_guard},
       {"keys_panel", keys_panel},
       {"sign_class", sign_unlocked ? "sign unlocked" : "sign"},
       {"sign_state", sign_unlocked ? "unlocked" : "locked"},
       {"sign_label", sign_unlocked ? "Sign (key unlocked)…" : "Sign…"}});
  return finish(page_response(status, p));
}

Response ComposeSession::review(const mail::Prepared& prepared, const mail::Draft& d) {
  Page p = page("signed", "Review: " + (d.subject.empty() ? "(no subject)" : d.subject));
  std::vector<Html> badges;
  if (prepared.is_signed)
    badges.push_back(fill(
        R"(<li><span class="badge signed">Signed</span> {{kind}} with key <code>{{fpr}}</code> ({{micalg}}). The signature covers the text and attachments below, exactly.</li>)",
        {{"kind", technology_title(prepared.technology)},
         {"fpr", prepared.signer_fingerprint},
         {"micalg", prepared.micalg}}));
  if (prepared.is_encrypted) {
    std::string to;
    for (const auto& a : prepared.encrypted_to)
      to += (to.empty() ? "" : ", ") + a;
    badges.push_back(fill(
        R"(<li><span class="badge encrypted">Encrypted</span> {{kind}}, readable only by: {{to}}</li>)",
        {{"kind", technology_title(prepared.technology)}, {"to", to}}));
  }
  std::vector<Html> atts;
  for (const auto& a : d.attachments)
    atts.push_back(fill(
        R"(<li>{{name}} <span class="size">({{type}}, {{size}}, SHA-256 <code>{{sha}}</code>)</span></li>)",
        {{"name", a.filename.empty() ? "(no name)" : a.filename},
         {"type", a.content_type},
         {"size", format_size(a.bytes.size())},
         {"sha", util::sha256_hex(a.bytes)}}));
  Html att_list;
  if (!atts.empty())
    att_list = fill(R"(<h2>Attachments</h2><ul class="attachments">{{items}}</ul>)",
                    {{"items", join(atts)}});
  std::string raw = prepared.message.size() > kMaxRawShown
                        ? prepared.message.substr(0, kMaxRawShown) + "\n[... " +
                              format_size(prepared.message.size() - kMaxRawShown) + " more]"
                        : prepared.message;
  Html cc_row;
  if (!d.cc.empty())
    cc_row = fill(R"(<dt>Cc</dt><dd>{{cc}}</dd>)", {{"cc", address_list_text(d.cc)}});
  p.main = fill(
      R"(<h1>Review before sending</h1>
<ul class="protection">{{badges}}</ul>
<article class="message">
<dl class="headers"><dt>From</dt><dd>{{from}}</dd><dt>To</dt><dd>{{to}}</dd>{{cc}}<dt>Subject</dt><dd>{{subject}}</dd></dl>
<pre class="body signed-text">{{body}}</pre>
{{atts}}
</article>
<details><summary>The exact message that will be sent ({{size}})</summary><pre class="raw">{{raw}}</pre></details>
<form method="post" action="/compose" class="inline">
{{csrf}}<input type="hidden" name="draft" value="{{draft}}"><input type="hidden" name="digest" value="{{digest}}">
<button type="submit" name="action" value="send">Send</button>
</form>
<p><a href="{{edit}}">Edit</a> (the signature is dropped and made again). Nothing has been sent yet; the message waits in Drafts.</p>)",
      {{"badges", join(badges)},
       {"from", d.from.display()},
       {"to", address_list_text(d.to)},
       {"cc", cc_row},
       {"subject", d.subject},
       {"body", d.body},
       {"atts", att_list},
       {"size", format_size(prepared.message.size())},
       {"raw", raw},
       {"csrf", csrf_field(ctx_.live_session().csrf_token)},
       {"draft", prepared.draft_id},
       {"digest", prepared.digest},
       {"edit", url("/compose", {{"draft", prepared.draft_id}})}});
  return finish(page_response(200, p));
}

Response ComposeSession::unlock_page(int status, const keys::KeyInfo& key,
                                     const std::string& draft_id, AfterUnlock after,
                                     std::optional<Notice> notice) {
  Html fields = fill(
      R"(<input type="hidden" name="draft" value="{{draft}}"><input type="hidden" name="then" value="{{then}}">)",
      {{"draft", draft_id}, {"then", after_unlock_name(after)}});
  Page p = cgi::unlock_page(ctx_, key, fields, url("/compose", {{"draft", draft_id}}), Nav::compose,
                            std::move(notice));
  return finish(page_response(status, p));
}

Response ComposeSession::resume(const std::string& draft_id, AfterUnlock after,
                                const keys::UnlockedKey& key) {
  auto draft = outbox_.load_draft(draft_id, &key);
  if (!draft)
    return finish(error_response(draft.code() == Errc::not_found ? 404 : 500,
                                 "The draft could not be opened: " + draft.error().message,
                                 ctx_.viewer()));
  if (after == AfterUnlock::send && !draft->sign && !draft->encrypt) {
    auto sent = outbox_.send(draft_id, std::nullopt, &key);
    if (!sent)
      return sent.code() == Errc::invalid_argument
                 ? compose(400, *draft, draft_id, Notice{Notice::Kind::error, sent.error().message})
                 : finish(send_failed(*this, sent.error(), draft_id));
    return finish(sent_page(*this, *sent));
  }
  if (after != AfterUnlock::sign || !draft->sign)
    return compose(200, *draft, draft_id, std::nullopt);
  auto prepared = outbox_.prepare(*draft, &key, draft_id);
  if (!prepared)
    return compose(400, *draft, draft_id,
                   Notice{Notice::Kind::error, "Not signed: " + prepared.error().message});
  return review(*prepared, *draft);
}

// ---- the /compose program

namespace {

// The draft the form describes. Attachments: those of the stored draft the form keeps
// (by index) and the new uploads. Errors are for the user.
struct FormResult {
  mail::Draft draft;
  std::optional<std::string> old_id;
  std::optional<Notice> warning;
};

Result<FormResult> draft_from_form(ComposeSession& cs) {
  Request& r = cs.ctx().request;
  const auto& user = cs.box().user();
  FormResult out;
  mail::Draft& d = out.draft;
  std::string from = r.field("from").value_or(user.email);
  bool own = std::any_of(user.emails.begin(), user.emails.end(),
                         [&](const std::string& e) { return lower(e) == lower(from); });
  if (!own)
    return make_error(Errc::invalid_argument, "You can only send from your own addresses.");
  d.from = {user.name, from};
  auto to = mail::parse_address_field(r.field("to").value_or(""));
  if (!to)
    return make_error(Errc::invalid_argument, "To: " + to.error().message);
  d.to = std::move(to).value();
  auto cc = mail::parse_address_field(r.field("cc").value_or(""));
  if (!cc)
    return make_error(Errc::invalid_argument, "Cc: " + cc.error().message);
  d.cc = std::move(cc).value();
  d.subject = r.field("subject").value_or("");
  d.body = mail::to_lf_line_ends(mail::to_crlf_line_ends(r.field("body").value_or("")));
  d.in_reply_to = r.field("in_reply_to").value_or("");
  std::string refs = r.field("references").value_or("");
  std::size_t pos = 0;
  while (pos < refs.size()) {
    std::size_t sp = refs.find(' ', pos);
    std::string id = refs.substr(pos, sp == std::string::npos ? std::string::npos : sp - pos);
    if (!id.empty())
      d.references.push_back(id);
    pos = sp == std::string::npos ? refs.size() : sp + 1;
  }
  d.sign = flag_field(r, "sign");
  d.encrypt = flag_field(r, "encrypt");
  d.technology = technology_from(r.field("kind").value_or("")).value_or(mail::Technology::openpgp);
  d.original_encrypted = flag_field(r, "original_encrypted");
  d.unencrypted_reply_ok = flag_field(r, "plain_ok");
  // Anything but the known names holds decrypted text: the safe side.
  d.decrypted_quote = mail::decrypted_quote_from(r.field("quote").value_or("none"))
                          .value_or(mail::DecryptedQuote::confirmed);
  if (d.decrypted_quote == mail::DecryptedQuote::to_signer) {
    d.quote_signer = r.field("quote_signer").value_or("");
    if (flag_field(r, "quote_ok"))
      d.decrypted_quote = mail::DecryptedQuote::confirmed;
  }

  // Attachments kept from the stored draft: read from the user's own Drafts, never
  // from anything the request names but the draft id.
  std::string old_id = r.field("draft").value_or("");
  std::vector<std::string> keep = r.fields("keep");
  if (!old_id.empty()) {
    if (!mail::valid_uid(old_id))
      return make_error(Errc::invalid_argument, "The draft id is not valid.");
    out.old_id = old_id;
  }
  if (out.old_id && !keep.empty()) {
    auto meta = cs.outbox().draft_meta(old_id);
    std::optional<mail::Draft> old;
    if (meta && !meta->is_protected) {
      auto loaded = cs.outbox().load_draft(old_id, nullptr);
      if (loaded)
        old = std::move(loaded).value();
    } else if (meta) {
      auto key = cs.outbox().draft_key(old_id);
      std::optional<keys::UnlockedKey> unlocked;
      if (key) {
        if (auto opened = cs.keys().open(*key)) {
          if (auto* k = std::get_if<keys::UnlockedKey>(&*opened))
            unlocked = std::move(*k);
        }
      }
      if (unlocked) {
        auto loaded = cs.outbox().load_draft(old_id, &*unlocked);
        if (loaded)
          old = std::move(loaded).value();
      }
    }
    if (!old) {
      // The earlier version stays: its attachments could not be read.
      out.old_id.reset();
      out.warning = Notice{Notice::Kind::error,
                           "The attachments of the earlier, encrypted version of this draft "
                           "could not be kept without unlocking the key; that version stays "
                           "in Drafts."};
    } else {
      for (const std::string& k : keep) {
        std::size_t i = 0;
        try {
          i = std::stoul(k);
        } catch (const std::exception&) {
          continue;
        }
        if (i < old->attachments.size())
          d.attachments.push_back(old->attachments[i]);
      }
    }
  }
  std::uint64_t limit = cs.ctx().app.config.attachment_max_bytes;
  std::uint64_t total = 0;
  for (const UploadedFile& f : r.files()) {
    if (f.field != "attachment" || (f.filename.empty() && f.data.empty()))
      continue;
    if (f.data.size() > limit)
      return make_error(Errc::invalid_argument, "The file \"" + mail::safe_filename(f.filename) +
                                                    "\" is larger than the limit of " +
                                                    format_size(limit) + ".");
    d.attachments.push_back(mail::make_attachment(f.filename, f.data));
  }
  for (const auto& a : d.attachments)
    total += a.bytes.size();
  if (d.attachments.size() > kMaxAttachments || total > mail::kMaxMessageBytes / 2)
    return make_error(Errc::invalid_argument, "Too many or too large attachments.");
  return out;
}

mail::Draft blank_draft(ComposeSession& cs) {
  mail::Draft d = webflow::new_draft(cs.keys().keys(), cs.box().user());
  if (auto to = cs.ctx().request.field("to")) {
    auto parsed = mail::parse_address_field(*to);
    if (parsed)
      d.to = std::move(parsed).value();
  }
  return d;
}

std::string recipients_text(const mail::Draft& d) {
  std::string out;
  for (const auto& a : mail::recipients(d))
    out += (out.empty() ? "" : ", ") + a;
  return out;
}

// "Quote the decrypted text?" (data-page="confirm-quote"): why the question is
// asked, who would receive the text, the text itself; Yes and No both POST.
Response confirm_quote(ComposeSession& cs, const webflow::MessageRef& ref, webflow::Derive how,
                       const webflow::Derived& derived) {
  Page p = cs.ctx().page("confirm-quote", "Quote the decrypted text?", Nav::compose);
  std::vector<Html> reasons;
  for (const auto& r : derived.reasons)
    reasons.push_back(fill(R"(<li>{{r}}</li>)", {{"r", r}}));
  std::string to = recipients_text(derived.draft);
  const char* param = webflow::derive_param(how);
  p.main = fill(R"(<h1>Quote the decrypted text?</h1>
<p>Your {{what}} would quote text that was decrypted with your key. Before it goes into a draft, check why this is asked:</p>
<ul class="quote-reasons">{{reasons}}</ul>
<p class="quote-recipients">It would go to: <strong>{{to}}</strong>{{later}}.</p>
<p>The text that would be quoted:</p>
<pre class="body quote-preview">{{text}}</pre>
<form method="post" action="/compose" class="inline">
{{csrf}}<input type="hidden" name="{{param}}" value="{{id}}"><input type="hidden" name="folder" value="{{folder}}">
<div class="actions"><button type="submit" name="action" value="quote" class="danger">Yes, quote it</button>
<button type="submit" name="action" value="noquote">No, start without it</button></div>
</form>)",
                {{"what", webflow::is_reply(how) ? "reply" : "forward"},
                 {"reasons", join(reasons)},
                 {"to", to.empty() ? std::string("nobody yet") : to},
                 {"later", Html(", and to anyone you add")},
                 {"text", derived.pending},
                 {"csrf", csrf_field(cs.ctx().live_session().csrf_token)},
                 {"param", param},
                 {"id", ref.uid},
                 {"folder", mail::folder_name(ref.folder)}});
  Response r = page_response(200, p);
  r.set_header("Cache-Control", "no-store");
  return cs.finish(std::move(r));
}

// A reply or forward of the message named by the request (`reply` or `forward`, and
// `folder`), or nullopt when the request names none. answer: the user's answer to
// the quoting question, if it was asked.
std::optional<Response> derived(ComposeSession& cs, webflow::QuoteAnswer answer) {
  Request& r = cs.ctx().request;
  for (auto how : {webflow::Derive::reply, webflow::Derive::reply_all, webflow::Derive::reply_list,
                   webflow::Derive::forward}) {
    auto uid = r.field(webflow::derive_param(how));
    if (!uid)
      continue;
    auto folder = folder_param(r);
    if (!folder || !mail::valid_uid(*uid))
      return error_response(404, "There is no such message.", cs.ctx().viewer());
    webflow::MessageRef ref{*folder, *uid};
    // One reading for this request: the message parsed and decrypted once.
    auto read = cs.keys().read(ref);
    if (!read)
      return error_response(404, "There is no such message; it may have been moved or deleted.",
                            cs.ctx().viewer());
    auto d = webflow::derive_draft(cs.keys().keys(), *read, cs.box().user(), how, answer);
    std::optional<Notice> notice;
    std::string why;
    for (const auto& reason : d.reasons)
      why += (why.empty() ? "" : " ") + reason;
    switch (d.state) {
      case webflow::QuoteState::ask:
        return confirm_quote(cs, ref, how, d);
      case webflow::QuoteState::not_quoted:
        notice = Notice{Notice::Kind::info, why};
        break;
      case webflow::QuoteState::quoted:
      case webflow::QuoteState::clear:
        break;
    }
    if (!d.recipient_note.empty()) {
      if (notice)
        notice->text += " " + d.recipient_note;
      else
        notice = Notice{Notice::Kind::info, d.recipient_note};
    }
    Response resp = cs.compose(200, d.draft, "", notice);
    if (d.state == webflow::QuoteState::quoted)
      resp.set_header("Cache-Control", "no-store");
    return resp;
  }
  return std::nullopt;
}

Response compose_get(ComposeSession& cs) {
  Request& r = cs.ctx().request;
  if (auto draft_id = r.field("draft")) {
    if (!mail::valid_uid(*draft_id))
      return error_response(404, "There is no such draft.", cs.ctx().viewer());
    auto meta = cs.outbox().draft_meta(*draft_id);
    if (!meta)
      return error_response(404, "There is no such draft; it may have been sent or deleted.",
                            cs.ctx().viewer());
    if (meta->is_protected) {
      auto key = cs.outbox().draft_key(*draft_id);
      if (!key)
        return error_response(404,
                              "This draft is encrypted and no key opens it: " + key.error().message,
                              cs.ctx().viewer());
      auto opened = cs.open_key(*key, *draft_id, AfterUnlock::edit);
      if (auto* page = std::get_if<Response>(&opened))
        return std::move(*page);
      return cs.resume(*draft_id, AfterUnlock::edit, std::get<keys::UnlockedKey>(opened));
    }
    auto d = cs.outbox().load_draft(*draft_id, nullptr);
    if (!d)
      return error_response(500, "The draft could not be opened: " + d.error().message,
                            cs.ctx().viewer());
    return cs.compose(200, *d, *draft_id, std::nullopt);
  }
  // Quoting happens without asking only when the rules allow it (core/webflow/drafting.h).
  if (auto page = derived(cs, webflow::QuoteAnswer::ask))
    return std::move(*page);
  return cs.compose(200, blank_draft(cs), "", std::nullopt);
}

Notice error_notice(const std::string& text) {
  return Notice{Notice::Kind::error, text};
}

// Signs and/or encrypts the stored draft, through the unlock page when signing needs
// a key that has no live grant.
Response prepare_stored(ComposeSession& cs, const mail::Draft& d, const std::string& id) {
  if (d.encrypt) {
    // A missing recipient key is said before the passphrase is asked for.
    auto keys = cs.outbox().encryption_keys(d);
    if (!keys)
      return cs.compose(
          400, d, id,
          error_notice("Not encrypted: " + keys.error().message + ". Nothing has been sent."));
  }
  std::optional<keys::UnlockedKey> signer;
  if (d.sign) {
    auto key = cs.outbox().sender_key(d.from.address, d.technology);
    if (!key)
      return cs.compose(400, d, id, error_notice("Cannot sign: " + key.error().message));
    auto opened = cs.open_key(*key, id, AfterUnlock::sign);
    if (auto* page = std::get_if<Response>(&opened))
      return std::move(*page);
    signer = std::get<keys::UnlockedKey>(std::move(opened));
  }
  auto prepared = cs.outbox().prepare(d, signer ? &*signer : nullptr, id);
  if (!prepared)
    return cs.compose(400, d, id, error_notice("Not prepared: " + prepared.error().message));
  return cs.review(*prepared, d);
}

Response sent_page(ComposeSession& cs, const mail::SentMessage& sent) {
  Page p = cs.ctx().page("sent", "Sent", Nav::compose);
  // Mail to this server's users arrives at once; mail to other domains may wait in the
  // mail system's queue, and the page says so rather than promising delivery.
  std::string to, outside;
  auth::UserStore users(cs.ctx().app.db, *cs.ctx().app.clock);
  for (const auto& a : sent.recipients) {
    std::string& list = users.find_by_email(a) ? to : outside;
    list += (list.empty() ? "" : ", ") + a;
  }
  Html queued;
  if (!outside.empty())
    queued =
        fill(R"(<p class="sent-outside">Outside this server: {{outside}}. The mail system )"
             R"(delivers it, or keeps it in its queue until it can; that can take a while.</p>)",
             {{"outside", outside}});
  Html copy;
  if (sent.sent_copy_error)
    p.notice = error_notice("The message was sent, but its copy could not be stored in Sent: " +
                            sent.sent_copy_error->message);
  else
    copy = fill(R"(<p><a href="{{href}}">Open the copy in Sent</a></p>)",
                {{"href", url("/message", {{"folder", "Sent"}, {"id", sent.sent_id}})}});
  p.main = fill(
      R"(<h1>Message sent</h1>
{{local}}{{queued}}
{{copy}}
<p><a href="/compose">Write another message</a> · <a href="/inbox">Inbox</a></p>)",
      {{"local", to.empty() ? Html()
                            : fill(R"(<p class="sent-to">Handed to the mail system for )"
                                   R"({{to}} (on this server: it arrives within moments).</p>)",
                                   {{"to", to}})},
       {"queued", queued},
       {"copy", copy}});
  return page_response(200, p);
}

Response send_failed(ComposeSession& cs, const Error& e, const std::string& id) {
  std::string text = "The message was not sent: " + e.message + ". It is kept in Drafts.";
  auto meta = cs.outbox().draft_meta(id);
  if (meta && !meta->is_protected) {
    auto d = cs.outbox().load_draft(id, nullptr);
    if (d)
      return cs.compose(502, *d, id, error_notice(text));
  }
  Page p = cs.ctx().page("compose", "Not sent", Nav::compose);
  p.notice = error_notice(text);
  p.main = fill(R"(<h1>Not sent</h1><p><a href="{{href}}">Open the draft</a></p>)",
                {{"href", url("/compose", {{"draft", id}})}});
  return page_response(502, p);
}

// Sends the stored clear draft id (d as the form gave it). A draft that quotes
// decrypted text is stored encrypted, so the key opens it first.
Response send_stored(ComposeSession& cs, const mail::Draft& d, const std::string& id) {
  std::optional<keys::UnlockedKey> key;
  if (d.decrypted_quote != mail::DecryptedQuote::none) {
    auto info = cs.outbox().draft_key(id);
    if (!info)
      return cs.compose(400, d, id, error_notice("Not sent: " + info.error().message));
    auto opened = cs.open_key(*info, id, AfterUnlock::send);
    if (auto* page = std::get_if<Response>(&opened))
      return std::move(*page);
    key = std::get<keys::UnlockedKey>(std::move(opened));
  }
  auto sent = cs.outbox().send(id, std::nullopt, key ? &*key : nullptr);
  if (!sent) {
    if (sent.code() == Errc::invalid_argument)
      return cs.compose(400, d, id, error_notice(sent.error().message));
    if (sent.code() == Errc::conflict)  // an interrupted earlier Send: maybe sent
      return error_response(409, sent.error().message, cs.ctx().viewer());
    return send_failed(cs, sent.error(), id);
  }
  return cs.finish(sent_page(cs, *sent));
}

// Looks up by WKD the recipients of the stored draft d (id) that have no usable
// OpenPGP key, and shows the form again with the outcome per address.
Response lookup_keys(ComposeSession& cs, const mail::Draft& d, const std::string& id) {
  if (d.technology != mail::Technology::openpgp)
    return cs.compose(400, d, id,
                      error_notice("Only OpenPGP keys can be looked up; S/MIME certificates are "
                                   "imported on the Keys page."));
  auto missing = cs.outbox().missing_keys(d);
  if (!missing)
    return cs.compose(
        500, d, id,
        error_notice("The recipients' keys could not be checked: " + missing.error().message));
  std::vector<std::string> addresses;
  for (const auto& m : *missing) {
    if (!m.is_sender)
      addresses.push_back(m.address);
  }
  if (addresses.empty())
    return cs.compose(200, d, id,
                      Notice{Notice::Kind::info, "Every recipient has a usable key already."});
  auto found = cs.contacts().lookup_wkd(cs.ctx().live_session().login, addresses);
  std::vector<KeyLookupLine> lines;
  std::size_t got = 0;
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    KeyLookupLine line{addresses[i], KeyLookupLine::Outcome::error, ""};
    if (found[i]) {
      line.outcome = KeyLookupLine::Outcome::found;
      line.text = found[i]->fingerprint;
      ++got;
    } else {
      line.outcome = found[i].code() == Errc::not_found ? KeyLookupLine::Outcome::not_found
                                                        : KeyLookupLine::Outcome::error;
      line.text = found[i].error().message;
    }
    lines.push_back(std::move(line));
  }
  cs.looked_up(std::move(lines));
  std::string summary = got == addresses.size()
                            ? "Keys found for every address looked up. Nothing has been sent yet."
                        : got == 0 ? "No key was found. Nothing has been sent."
                                   : "Keys found for some addresses. Nothing has been sent yet.";
  return cs.compose(200, d, id,
                    Notice{got == 0 ? Notice::Kind::error : Notice::Kind::info, summary});
}

Response compose_post(ComposeSession& cs) {
  Request& r = cs.ctx().request;
  std::string action = r.field("action").value_or("");
  // The answer to "quote the decrypted text?" (data-page="confirm-quote").
  if (action == "quote" || action == "noquote") {
    auto page =
        derived(cs, action == "quote" ? webflow::QuoteAnswer::yes : webflow::QuoteAnswer::no);
    if (!page)
      return error_response(404, "There is no such message.", cs.ctx().viewer());
    return std::move(*page);
  }
  if (action != "save" && action != "sign" && action != "encrypt" && action != "send" &&
      action != "lookup")
    return error_response(400, "Unknown action.", cs.ctx().viewer());

  // Send from the review page: exactly the prepared message that was shown.
  if (action == "send" && r.field("digest")) {
    std::string id = r.field("draft").value_or("");
    if (!mail::valid_uid(id))
      return error_response(404, "There is no such draft.", cs.ctx().viewer());
    auto sent = cs.outbox().send(id, r.field("digest"));
    if (!sent) {
      if (sent.code() == Errc::not_found)
        return error_response(404, "There is no such draft; it may have been sent already.",
                              cs.ctx().viewer());
      if (sent.code() == Errc::conflict)
        return error_response(409, sent.error().message, cs.ctx().viewer());
      return send_failed(cs, sent.error(), id);
    }
    return sent_page(cs, *sent);
  }

  auto form = draft_from_form(cs);
  if (!form) {
    // Show the form again with what can be kept.
    mail::Draft d = blank_draft(cs);
    if (auto to = mail::parse_address_field(r.field("to").value_or("")))
      d.to = std::move(to).value();
    if (auto cc = mail::parse_address_field(r.field("cc").value_or("")))
      d.cc = std::move(cc).value();
    d.subject = r.field("subject").value_or("");
    d.body = mail::to_lf_line_ends(mail::to_crlf_line_ends(r.field("body").value_or("")));
    return cs.compose(400, d, r.field("draft").value_or(""), error_notice(form.error().message));
  }
  mail::Draft d = std::move(form->draft);
  if (action == "sign")
    d.sign = true;
  if (action == "encrypt")
    d.encrypt = true;
  if (auto st = mail::validate_draft(d, mail::DraftCheck::to_save); !st)
    return cs.compose(400, d, form->old_id.value_or(""), error_notice(st.error().message));

  auto id = cs.outbox().save_draft(d, form->old_id);
  if (!id) {
    // An encrypted draft needs the sender's key: keep an unencrypted one instead? No:
    // say why and keep the form.
    return cs.compose(400, d, form->old_id.value_or(""),
                      error_notice("The draft was not saved: " + id.error().message));
  }
  if (action == "lookup")
    return lookup_keys(cs, d, *id);
  if (action == "save") {
    std::optional<Notice> n = form->warning;
    if (!n)
      n = Notice{Notice::Kind::success, d.encrypt || d.decrypted_quote != mail::DecryptedQuote::none
                                            ? "Draft saved, encrypted to your key."
                                            : "Draft saved."};
    return cs.compose(200, d, *id, n);
  }
  // Text decrypted and quoted for its signer goes to nobody else unasked: an address
  // added since counts as a recipient (core/webflow/drafting.h).
  if (auto others = webflow::unapproved_recipients(d, cs.box().user()); !others.empty()) {
    std::string list;
    for (const auto& a : others)
      list += (list.empty() ? "" : ", ") + a;
    return cs.compose(409, d, *id,
                      error_notice("Not sent: this message quotes decrypted text that was quoted "
                                   "without asking because it went only to its signer. " +
                                   list +
                                   " did not sign it. Remove the quoted text or the address, or "
                                   "tick that other recipients may read it."));
  }
  if (action == "send" && !d.sign && !d.encrypt) {
    if (auto st = mail::validate_draft(d, mail::DraftCheck::to_send); !st)
      return cs.compose(400, d, *id, error_notice(st.error().message));
    return send_stored(cs, d, *id);
  }
  // sign, encrypt, or send of a message to be signed or encrypted: review first.
  return prepare_stored(cs, d, *id);
}

}  // namespace

// The mailbox could not be opened: the account is gone (404), the mail server refused
// the session's password (401), or it cannot be reached. The last is the guard's 503
// page, which gives a POST's typed text back (cgi/compose.cc's kept fields).
Response mailbox_not_opened(Context& ctx, const Error& error) {
  if (error.code == Errc::not_found || error.code == Errc::bad_credentials)
    return mailbox_error(error, ctx.viewer());
  throw ServiceUnavailable(
      "Your mailbox cannot be reached just now (the mail server is down or refused the "
      "connection), so nothing was done: nothing was sent, saved or changed. Try again in a "
      "moment.",
      "the mailbox cannot be opened: " + error.message);
}

Response compose_handler(Context& ctx) {
  auto cs = ComposeSession::open(ctx);
  if (!cs)
    return mailbox_not_opened(ctx, cs.error());
  return ctx.request.is_post() ? compose_post(**cs) : compose_get(**cs);
}

Response unlock_for_draft(Context& ctx, const std::string& draft_id) {
  auto cs = ComposeSession::open(ctx);
  if (!cs)
    return mailbox_not_opened(ctx, cs.error());
  ComposeSession& s = **cs;
  if (!mail::valid_uid(draft_id))
    return error_response(404, "There is no such draft.", ctx.viewer());
  AfterUnlock after =
      after_unlock_from(ctx.request.field("then").value_or("")).value_or(AfterUnlock::sign);
  auto key = s.outbox().draft_key(draft_id);
  if (!key) {
    int status = key.code() == Errc::not_found ? 404 : 500;
    return error_response(status, "The draft cannot be opened: " + key.error().message,
                          ctx.viewer());
  }
  // The same unlock as for a message (key_pages.h): one path, one page.
  auto outcome = unlock_from_form(ctx, s.keys(), *key);
  if (!outcome) {
    const Error& e = outcome.error();
    switch (e.code) {
      case Errc::invalid_argument: {
        std::string text = e.message;
        if (!text.empty())
          text[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(text[0])));
        return s.unlock_page(400, *key, draft_id, after, error_notice(text + "."));
      }
      case Errc::wrong_passphrase:
        return s.unlock_page(403, *key, draft_id, after,
                             error_notice("Wrong passphrase. The draft is kept; try again."));
      case Errc::locked_out:
        return s.unlock_page(429, *key, draft_id, after, error_notice(e.message));
      default:
        return s.unlock_page(403, *key, draft_id, after,
                             error_notice("The key could not be unlocked: " + e.message));
    }
  }
  if (auto* in_use = std::get_if<webflow::InUseElsewhere>(&*outcome))
    return s.in_use(*in_use);
  s.unlocked(std::move(std::get<webflow::Unlocked>(*outcome)));
  // The key itself, through the grant just made (one AES-GCM open, no second KDF).
  auto opened = s.open_key(*key, draft_id, after);
  if (auto* page = std::get_if<Response>(&opened))
    return std::move(*page);
  return s.resume(draft_id, after, std::get<keys::UnlockedKey>(opened));
}

}  // namespace wmk::cgi
