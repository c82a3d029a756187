require ["duplicate", "fileinto", "imap4flags", "variables"];
if header :matches "subject" "ALERT: *" {
  if duplicate :seconds 60 :uniqueid "${1}" {
    setflag "\\seen";
  }
  fileinto "Alerts";
}
if duplicate :handle "notifier" :header "x-event-id" :last { stop; }
