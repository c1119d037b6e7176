// Placeholder translation unit so the cgi library has a source until the pages land.
namespace wmk::cgi {}
