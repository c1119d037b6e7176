// /inbox
//   GET  folder (INBOX, Sent, Drafts; default INBOX), page (from 1) → the folder's
//        messages, newest first, config.page_size per page, from the header index
//        brought up to date with the Maildir first. Unread rows are bold; encrypted
//        ones carry a badge. 404 for an unknown folder, 400 for a bad page number.
#include "cgi/common/guard.h"
#include "cgi/common/mailbox.h"

namespace wmk::cgi {

namespace {

Html row(mail::Folder folder, const mail::Summary& m) {
  std::string href = url("/message", {{"id", m.uid}, {"folder", mail::folder_name(folder)}});
  Html badges;
  if (m.encrypted)
    badges += Html(R"(<span class="badge encrypted">Encrypted</span>)");
  if (m.has_attachments)
    badges += Html(R"(<span class="badge attachment">Attachment</span>)");
  std::string subject = m.subject.empty() ? "(no subject)" : m.subject;
  return fill(R"(<tr class="{{cls}}">
<td class="from">{{unread}}{{from}}</td>
<td class="subject"><a href="{{href}}">{{subject}}</a> {{badges}}</td>
<td class="date">{{date}}</td>
</tr>
)",
              {{"cls", m.seen ? "seen" : "unread"},
               {"unread", m.seen ? Html() : Html(R"(<span class="sr-only">Unread: </span>)")},
               {"from", m.from_display().empty() ? "(unknown sender)" : m.from_display()},
               {"href", href},
               {"subject", subject},
               {"badges", badges},
               {"date", format_date(m.date)}});
}

Html pager(mail::Folder folder, const mail::Page& page) {
  if (page.page_count() <= 1)
    return {};
  auto link = [&](int n, std::string_view label, Literal rel) {
    return fill(R"(<a href="{{href}}" rel="{{rel}}">{{label}}</a>)",
                {{"href", url("/inbox", {{"folder", mail::folder_name(folder)},
                                         {"page", std::to_string(n)}})},
                 {"rel", rel.view()},
                 {"label", label}});
  };
  Html prev = page.page_no > 1 ? link(page.page_no - 1, "← Newer", "prev") : Html();
  Html next = page.page_no < page.page_count() ? link(page.page_no + 1, "Older →", "next") : Html();
  return fill(
      R"(<nav class="pager" aria-label="Pages">{{prev}}<span>Page {{n}} of {{count}}</span>{{next}}</nav>)",
      {{"prev", prev}, {"n", page.page_no}, {"count", page.page_count()}, {"next", next}});
}

Response inbox(Context& ctx) {
  auto folder = folder_param(ctx.request);
  if (!folder)
    return error_response(404, "There is no such folder.", ctx.viewer());
  auto page_no = page_param(ctx.request);
  if (!page_no)
    return error_response(400, "The page number must be a whole number from 1.", ctx.viewer());
  auto box = UserMailbox::open(ctx.app, ctx.mailboxes, ctx.live_session());
  if (!box)
    return mailbox_error(box.error(), ctx.viewer());
  auto& index = (*box)->index();
  if (auto st = index.refresh(*folder); !st) {
    if (st.code() != Errc::io)
      throw std::runtime_error("refreshing the mail index failed: " + st.error().message);
    return mailbox_error(st.error(), ctx.viewer());
  }
  auto page = index.page(*folder, *page_no, static_cast<int>(ctx.app.config.page_size));
  if (!page)
    throw std::runtime_error("reading the mail index failed: " + page.error().message);

  Page p = ctx.page("inbox", folder_title(*folder), folder_nav(*folder));
  Html body;
  if (page->items.empty()) {
    body = page->total == 0 ? Html(R"(<p class="empty">No messages in this folder.</p>)")
                            : Html(R"(<p class="empty">No messages on this page.</p>)");
  } else {
    std::vector<Html> rows;
    rows.reserve(page->items.size());
    for (const auto& m : page->items)
      rows.push_back(row(*folder, m));
    body = fill(R"(<table class="messages">
<thead><tr><th scope="col">From</th><th scope="col">Subject</th><th scope="col">Date</th></tr></thead>
<tbody>
{{rows}}</tbody>
</table>)",
                {{"rows", join(rows)}});
  }
  p.main = fill(R"(<h1>{{title}} <span class="count">({{total}})</span></h1>
{{body}}
{{pager}})",
                {{"title", p.title},
                 {"total", static_cast<long long>(page->total)},
                 {"body", body},
                 {"pager", pager(*folder, *page)}});
  return page_response(200, p);
}

}  // namespace

}  // namespace wmk::cgi

int main() {
  using namespace wmk::cgi;
  Program program{.name = "inbox", .methods = {"GET"}, .access = Access::session, .secrets = {}};
  return run(program, inbox);
}
