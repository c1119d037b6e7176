#include "cgi/common/message_view.h"

#include <stdexcept>

#include "cgi/common/key_pages.h"
#include "cgi/common/mail_frame.h"
#include "cgi/common/mailbox.h"
#include "core/webflow/correspondents.h"
#include "core/webflow/drafting.h"
#include "core/webflow/signed_view.h"

namespace wmk::cgi {

namespace {

Html address_list(const std::vector<mail::Address>& list) {
  std::string joined;
  for (const auto& a : list) {
    if (!joined.empty())
      joined += ", ";
    joined += a.display();
  }
  return text(joined);
}

// One key the message offers for its sender: what it is, and the form that imports
// it (after the user saw its fingerprint and the address it would be bound to), posted
// to action.
Html offer_item(const Context& ctx, const webflow::MessageRef& ref, const webflow::KeyOffer& o,
                std::string_view action_path) {
  const bool autocrypt = o.kind == webflow::KeyOffer::Kind::autocrypt;
  const std::string where =
      autocrypt ? "The sender's Autocrypt header carries" : "This message has an attached";
  if (!o.problem.empty()) {
    return fill(
        R"(<li class="key-offer" data-offer="{{kind}}" data-offer-state="refused">{{where}} key that cannot be imported: {{why}}.</li>)",
        {{"kind", webflow::offer_kind_name(o.kind)}, {"where", where}, {"why", o.problem}});
  }
  Html claim;
  if (!o.names_from) {
    std::string names;
    for (const auto& e : o.emails)
      names += (names.empty() ? "" : ", ") + e;
    claim = fill(
        R"( <strong class="key-offer-mismatch">The key does not carry the sender's address {{from}}{{names}}: import it for {{from}} only if you know that it is theirs.</strong>)",
        {{"from", o.from},
         {"names", names.empty() ? std::string(" (it carries no address)")
                                 : " (it carries " + names + ")"}});
  }
  Html action;
  if (o.bound) {
    action = fill(R"( <span class="muted">It is already bound to {{from}} in your keys.</span>)",
                  {{"from", o.from}});
  } else {
    action = fill(R"(
<form method="post" action="{{action}}" class="inline import-offer">
{{csrf}}{{fields}}<input type="hidden" name="action" value="import-key"><input type="hidden" name="kind" value="{{kind}}"><input type="hidden" name="part" value="{{part}}"><input type="hidden" name="fingerprint" value="{{fpr}}">
<button type="submit">Import for {{from}}</button>
</form>)",
                  {{"action", std::string(action_path)},
                   {"csrf", csrf_field(ctx.live_session().csrf_token)},
                   {"fields", message_fields(ref)},
                   {"kind", webflow::offer_kind_name(o.kind)},
                   {"part", o.part_id},
                   {"fpr", o.fingerprint},
                   {"from", o.from}});
  }
  return fill(
      R"(<li class="key-offer" data-offer="{{kind}}" data-offer-state="{{state}}" data-fingerprint="{{fpr}}">{{where}} {{what}} <code class="fingerprint">{{grouped}}</code> for the sender {{from}}{{source}}.{{claim}}{{action}}</li>)",
      {{"kind", webflow::offer_kind_name(o.kind)},
       {"state", o.bound ? "bound" : (o.names_from ? "offered" : "mismatch")},
       {"fpr", o.fingerprint},
       {"where", where},
       {"what", o.type == keys::KeyType::smime ? "certificate" : "key"},
       {"grouped", keys::group_fingerprint(o.fingerprint)},
       {"from", o.from},
       {"source", autocrypt ? " (it would be bound as seen in an Autocrypt header)"
                            : " (it would be bound as accepted by you)"},
       {"claim", claim},
       {"action", action}});
}

Html key_offers_html(const Context& ctx, const webflow::MessageRef& ref,
                     const mail::Message& message, std::string_view raw) {
  return key_offers_section(
      ctx, ref, webflow::key_offers(ctx.app, ctx.live_session(), message, raw), "/message");
}

}  // namespace

Html key_offers_section(const Context& ctx, const webflow::MessageRef& ref,
                        const std::vector<webflow::KeyOffer>& offers,
                        std::string_view action_path) {
  if (offers.empty())
    return {};
  std::vector<Html> items;
  for (const auto& o : offers)
    items.push_back(offer_item(ctx, ref, o, action_path));
  return fill(
      R"(<section class="key-offers"><h2>Keys in this message</h2><ul class="key-offers">{{items}}</ul></section>)",
      {{"items", join(items)}});
}

void add_notice(Page& page, Notice notice) {
  if (page.notice && !page.notice->text.empty()) {
    notice.text = page.notice->text + " " + notice.text;
    if (page.notice->kind == Notice::Kind::error)
      notice.kind = Notice::Kind::error;
  }
  page.notice = std::move(notice);
}

std::optional<webflow::MessageRef> message_param(const Request& request) {
  auto folder = folder_param(request);
  auto uid = request.field("id").value_or("");
  if (!folder || !mail::valid_uid(uid))
    return std::nullopt;
  return webflow::MessageRef{*folder, uid};
}

Html message_fields(const webflow::MessageRef& ref) {
  return fill(
      R"(<input type="hidden" name="id" value="{{id}}"><input type="hidden" name="folder" value="{{folder}}">)",
      {{"id", ref.uid}, {"folder", mail::folder_name(ref.folder)}});
}

std::string message_url(const webflow::MessageRef& ref) {
  return url("/message", {{"id", ref.uid}, {"folder", mail::folder_name(ref.folder)}});
}

Nav message_nav(const webflow::MessageRef& ref) {
  return folder_nav(ref.folder);
}

Html header_rows(const mail::ParsedMessage& m) {
  Html rows = fill(R"(<dt>From</dt><dd>{{from}}</dd>)",
                   {{"from", m.from.display().empty() ? "(unknown sender)" : m.from.display()}});
  if (!m.to.empty())
    rows += fill(R"(<dt>To</dt><dd>{{to}}</dd>)", {{"to", address_list(m.to)}});
  if (!m.cc.empty())
    rows += fill(R"(<dt>Cc</dt><dd>{{cc}}</dd>)", {{"cc", address_list(m.cc)}});
  if (m.date)
    rows += fill(R"(<dt>Date</dt><dd>{{date}}</dd>)", {{"date", format_date(*m.date)}});
  return rows;
}

Html text_content(const mail::ParsedMessage& m, HtmlView view, const webflow::MessageRef& ref) {
  switch (m.text_format) {
    case mail::BodyFormat::plain:
      return fill(R"(<pre class="body">{{text}}</pre>)", {{"text", m.text}});
    case mail::BodyFormat::html: {
      auto href = [&](std::string_view v) {
        return url("/message",
                   {{"id", ref.uid}, {"folder", mail::folder_name(ref.folder)}, {"view", v}});
      };
      if (view == HtmlView::text)
        return fill(
            R"(<p class="body-view">Shown as plain text. <a href="{{href}}">Show formatted</a></p>
{{body}})",
            {{"href", href("html")}, {"body", html_mail_as_text(m.text)}});
      return fill(
          R"(<p class="body-view">Formatted message: scripts, forms, styles, images and remote content are removed. <a href="{{href}}">Show as plain text</a></p>
{{frame}})",
          {{"href", href("text")}, {"frame", html_mail_frame(m.text)}});
    }
    case mail::BodyFormat::none:
      break;
  }
  return Html(R"(<p class="empty">This message has no text.</p>)");
}

Html attachment_list(const mail::ParsedMessage& m, const webflow::MessageRef& ref) {
  std::vector<Html> items;
  for (const auto& part : m.parts) {
    if (!part.is_attachment || part.role != mail::PartRole::content)
      continue;
    std::string href =
        url("/attachment",
            {{"id", ref.uid}, {"folder", mail::folder_name(ref.folder)}, {"part", part.id}});
    items.push_back(fill(
        R"(<li><a href="{{href}}" download>{{name}}</a> <span class="size">({{size}})</span></li>)",
        {{"href", href},
         {"name", part.filename.empty() ? "part-" + part.id : part.filename},
         {"size", format_size(part.size)}}));
  }
  if (items.empty())
    return {};
  return fill(
      R"(<section class="attachments"><h2>Attachments</h2><ul class="attachments">{{items}}</ul></section>)",
      {{"items", join(items)}});
}

Html answer_links(const webflow::MessageRef& ref, const mail::ParsedMessage& m) {
  const std::string folder = mail::folder_name(ref.folder);
  auto link = [&](webflow::Derive how, const char* cls, const char* label) {
    return fill(
        R"(<a href="{{href}}" class="{{cls}}">{{label}}</a> )",
        {{"href", url("/compose", {{webflow::derive_param(how), ref.uid}, {"folder", folder}})},
         {"cls", cls},
         {"label", label}});
  };
  Html links = link(webflow::Derive::reply, "reply", "Reply") +
               link(webflow::Derive::reply_all, "reply-all", "Reply all");
  if (!m.list_post.empty())
    links += link(webflow::Derive::reply_list, "reply-list", "Reply to list");
  links += link(webflow::Derive::forward, "forward", "Forward");
  return fill(R"(<p class="actions">{{links}}<a href="{{href}}">Back to {{name}}</a></p>)",
              {{"links", links},
               {"href", url("/inbox", {{"folder", folder}})},
               {"name", folder_title(ref.folder)}});
}

Html encrypted_content(const Context& ctx, const webflow::MessageRef& ref, DecryptLook look) {
  const bool unlocked = look == DecryptLook::unlocked;
  return fill(R"(<section class="encrypted">
<p><span class="badge encrypted">Encrypted</span> This message is encrypted. {{hint}}</p>
<form method="post" action="/decrypt" class="inline">
{{csrf}}{{fields}}
<button type="submit" class="{{cls}}" data-key-state="{{state}}">{{label}}</button>
</form>
</section>)",
              {{"hint", unlocked ? "Your key is unlocked: it opens at once."
                                 : "Decrypt it to read it; you will be asked for your key's "
                                   "passphrase."},
               {"csrf", csrf_field(ctx.live_session().csrf_token)},
               {"fields", message_fields(ref)},
               {"cls", unlocked ? "decrypt unlocked" : "decrypt"},
               {"state", unlocked ? "unlocked" : "locked"},
               {"label", unlocked ? "Decrypt (key unlocked)" : "Decrypt"}});
}

Response message_page(Context& ctx, const webflow::MessageRef& ref, int status,
                      std::optional<Notice> notice, HtmlView view) {
  auto box = UserMailbox::open(ctx.app, ctx.mailboxes, ctx.live_session());
  if (!box)
    return mailbox_error(box.error(), ctx.viewer());
  auto raw = (*box)->mailbox().read(ref.folder, ref.uid);
  if (!raw) {
    if (raw.code() == Errc::not_found || raw.code() == Errc::invalid_argument)
      return error_response(404, "There is no such message; it may have been moved or deleted.",
                            ctx.viewer());
    if (raw.code() == Errc::unsupported)
      return error_response(413, "This message is too large to show here.", ctx.viewer());
    if (raw.code() == Errc::io)
      return mailbox_error(raw.error(), ctx.viewer());
    throw std::runtime_error("reading a message failed: " + raw.error().message);
  }

  ctx.return_path = message_url(ref);
  Page p = ctx.page("message", "Message", message_nav(ref));
  if (notice)
    add_notice(p, std::move(*notice));
  Html back = fill(R"(<p class="actions"><a href="{{href}}">Back to {{name}}</a></p>)",
                   {{"href", url("/inbox", {{"folder", mail::folder_name(ref.folder)}})},
                    {"name", folder_title(ref.folder)}});
  // The page's one parse of the message: its headers, text and signatures.
  auto message = mail::Message::parse(*raw);
  if (!message) {
    add_notice(p, Notice{Notice::Kind::error,
                         "This message could not be read: " + message.error().message});
    p.main = back;
    return page_response(status, p);
  }
  const auto& m = message->parsed();
  p.title = m.subject.empty() ? "(no subject)" : m.subject;
  Html content;
  if (mail::is_encrypted(m.protection)) {
    DecryptLook look = DecryptLook::locked;
    if (auto key = webflow::key_for_message(ctx.app, ctx.live_session(), *message)) {
      auto state = webflow::key_state(ctx.app, ctx.live_session(), *key);
      if (state && state->mine)
        look = DecryptLook::unlocked;
    }
    content = encrypted_content(ctx, ref, look) + key_offers_html(ctx, ref, *message, *raw);
  } else if (mail::is_signed(m.protection)) {
    // Verifying needs only public keys: the verdict is shown with no unlock.
    auto verified = webflow::verify_signed_message(ctx.app, ctx.live_session(), *message);
    Html indicator;
    if (verified) {
      indicator = signature_indicator(verified->view);
      if (verified->previous_signer) {
        indicator += fill(
            R"(<li class="indicator key-changed" data-key-changed="{{previous}}">The key that signs mail from this address has changed since the last message (before: {{previous}}).</li>)",
            {{"previous", *verified->previous_signer}});
      }
    } else {
      indicator = fill(
          R"(<li class="indicator signature-bad" data-signature-state="error">The signature could not be checked: {{why}}</li>)",
          {{"why", verified.error().message}});
    }
    // An opaque S/MIME signature holds the content: only a good one releases it.
    Html body;
    if (verified && m.protection == mail::Protection::smime_signed && m.text.empty() &&
        !verified->view.segments.empty())
      body = segment_body(verified->view.segments.front());
    else
      body = text_content(m, view, ref);
    content = fill(R"(<ul class="indicators" aria-label="Protection">{{indicator}}</ul>
{{body}})",
                   {{"indicator", indicator}, {"body", body}}) +
              attachment_list(m, ref) + key_offers_html(ctx, ref, *message, *raw);
  } else {
    content = text_content(m, view, ref) + attachment_list(m, ref) +
              key_offers_html(ctx, ref, *message, *raw);
  }
  p.main = fill(
      R"(<article class="message">
<h1>{{subject}}</h1>
<dl class="headers">{{headers}}</dl>
{{content}}
</article>
{{back}})",
      {{"subject", p.title},
       {"headers", header_rows(m)},
       {"content", content},
       {"back", answer_links(ref, m)}});
  return page_response(status, p);
}

}  // namespace wmk::cgi
