-- infra's language server in Neovim (0.7 or later), without plugins.
-- Put this file in ~/.config/nvim/plugin/ (or require it from init.lua).
vim.cmd([[autocmd BufRead,BufNewFile *.infra,*.infravars setfiletype infra]])

vim.api.nvim_create_autocmd("FileType", {
  pattern = "infra",
  callback = function(args)
    local root = vim.fs and vim.fs.dirname(args.file) or vim.fn.fnamemodify(args.file, ":p:h")
    local client = vim.lsp.start_client({
      name = "infra",
      cmd = { "infra", "lsp" },
      root_dir = root,
    })
    if client then
      vim.lsp.buf_attach_client(args.buf, client)
    end
    vim.bo[args.buf].commentstring = "# %s"
  end,
})
