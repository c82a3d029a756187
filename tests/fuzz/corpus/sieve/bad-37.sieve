require "date";
if currentdate "yearx" "1" {}