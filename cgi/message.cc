// /message
//   GET  id (the Maildir uid), folder (default INBOX), view (html|text) → the message:
//        headers, the text body escaped in a <pre> (an HTML-only body sanitized in a
//        sandboxed frame, or with view=text as text), the attachments with links to
//        /attachment. An
//        encrypted message shows that it is encrypted and a Decrypt button (POST
//        /decrypt with id, folder and csrf). Viewing marks the message seen.
//        404 for an unknown folder or message.
#include "cgi/common/guard.h"
#include "cgi/common/mail_frame.h"
#include "cgi/common/mailbox.h"
#include "core/mail/mime.h"

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

Html encrypted_content(const Context& ctx, std::string_view uid, mail::Folder folder) {
  return fill(R"(<section class="encrypted">
<p><span class="badge encrypted">Encrypted</span> This message is encrypted. Decrypt it to read it.</p>
<form method="post" action="/decrypt" class="inline">
{{csrf}}<input type="hidden" name="id" value="{{id}}"><input type="hidden" name="folder" value="{{folder}}">
<button type="submit" class="decrypt">Decrypt</button>
</form>
</section>)",
              {{"csrf", csrf_field(ctx.live_session().csrf_token)},
               {"id", uid},
               {"folder", mail::folder_name(folder)}});
}

// How an HTML-only body is shown: sanitized in the sandboxed frame, or as text.
enum class HtmlView { framed, text };

Html text_content(const mail::ParsedMessage& m, HtmlView view, std::string_view uid,
                  mail::Folder folder) {
  switch (m.text_format) {
    case mail::BodyFormat::plain:
      return fill(R"(<pre class="body">{{text}}</pre>)", {{"text", m.text}});
    case mail::BodyFormat::html: {
      auto href = [&](std::string_view v) {
        return url("/message", {{"id", uid}, {"folder", mail::folder_name(folder)}, {"view", v}});
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

Html attachment_list(const mail::ParsedMessage& m, std::string_view uid, mail::Folder folder) {
  std::vector<Html> items;
  for (const auto& part : m.parts) {
    if (!part.is_attachment || part.role != mail::PartRole::content)
      continue;
    std::string href =
        url("/attachment", {{"id", uid}, {"folder", mail::folder_name(folder)}, {"part", part.id}});
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

Response message(Context& ctx) {
  auto folder = folder_param(ctx.request);
  auto uid = ctx.request.field("id").value_or("");
  if (!folder || !mail::valid_uid(uid))
    return error_response(404, "There is no such message.", ctx.viewer());
  const HtmlView view =
      ctx.request.field("view").value_or("") == "text" ? HtmlView::text : HtmlView::framed;
  auto box = UserMailbox::open(ctx.app, ctx.live_session());
  if (!box)
    return error_response(404, box.error().message, ctx.viewer());
  const auto& maildir = (*box)->maildir();
  auto raw = maildir.read(*folder, uid);
  if (!raw) {
    if (raw.code() == Errc::not_found || raw.code() == Errc::invalid_argument)
      return error_response(404, "There is no such message; it may have been moved or deleted.",
                            ctx.viewer());
    if (raw.code() == Errc::unsupported)
      return error_response(413, "This message is too large to show here.", ctx.viewer());
    throw std::runtime_error("reading a message failed: " + raw.error().message);
  }
  // Mark it seen unless the index already says so: each Maildir lookup of a message in
  // cur/ lists the folder, which costs ~20 ms per lookup at 10,000 messages.
  auto& index = (*box)->index();
  if (auto summary = index.find(*folder, uid); !summary || !summary->seen) {
    if (maildir.mark_seen(*folder, uid))
      (void)index.note_changed(*folder, uid);
  }

  Page p = ctx.page("message", "Message",
                    *folder == mail::Folder::inbox  ? Nav::inbox
                    : *folder == mail::Folder::sent ? Nav::sent
                                                    : Nav::drafts);
  Html back = fill(R"(<p><a href="{{href}}">Back to {{name}}</a></p>)",
                   {{"href", url("/inbox", {{"folder", mail::folder_name(*folder)}})},
                    {"name", folder_title(*folder)}});
  auto parsed = mail::parse_message(*raw);
  if (!parsed) {
    p.notice =
        Notice{Notice::Kind::error, "This message could not be read: " + parsed.error().message};
    p.main = back;
    return page_response(200, p);
  }
  const auto& m = *parsed;
  p.title = m.subject.empty() ? "(no subject)" : m.subject;
  Html content = mail::is_encrypted(m.protection)
                     ? encrypted_content(ctx, uid, *folder)
                     : text_content(m, view, uid, *folder) + attachment_list(m, uid, *folder);
  p.main = fill(
      R"(<article class="message">
<h1>{{subject}}</h1>
<dl class="headers">{{headers}}</dl>
{{content}}
</article>
{{back}})",
      {{"subject", p.title}, {"headers", header_rows(m)}, {"content", content}, {"back", back}});
  return page_response(200, p);
}

}  // namespace

}  // namespace wmk::cgi

int main() {
  using namespace wmk::cgi;
  Program program{.name = "message", .methods = {"GET"}, .access = Access::session, .secrets = {}};
  return run(program, message);
}
