require ["editheader"];
addheader :last "X-Filtered" "yes";
deleteheader "X-Spam-Status";
deleteheader :index 1 :last "Received";
deleteheader :matches "X-Spam-Level" "*";
deleteheader :comparator "i;octet" :contains "Comments" ["spam", "ad"];
deleteheader :index 1 :contains "Delivered-To" "bob@example.com";
