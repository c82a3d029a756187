require "fileinto;
keep;
