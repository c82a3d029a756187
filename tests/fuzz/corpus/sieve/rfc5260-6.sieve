require ["index", "fileinto"];
if header :index 2 :last :matches "received" "*example.net*" {
  fileinto "relayed";
}
if address :index 1 :domain :is "from" "example.com" { keep; }
