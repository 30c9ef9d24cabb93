-- Argo CD health check for cvm-operator.io/CvmInstance (see docs/gitops.md).
-- Argo CD runs custom scripts without Lua's string, math or io libraries (unless
-- useOpenLibs is set): use only base functions such as ipairs, and the `..` operator.
local hs = {}
if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator"
  return hs
end
if obj.status.observedGeneration ~= nil and obj.metadata.generation ~= nil
   and obj.status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe the latest spec"
  return hs
end

local function condition(wanted)
  for _, c in ipairs(obj.status.conditions) do
    if c.type == wanted then
      return c
    end
  end
  return nil
end

local function from(status, c)
  hs.status = status
  hs.message = c.reason .. ": " .. (c.message or "")
  return hs
end

local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  return from("Degraded", stalled)
end
local ready = condition("Ready")
if ready ~= nil then
  if ready.status == "True" then
    return from("Healthy", ready)
  end
  return from("Progressing", ready)
end
-- No Ready condition yet: the API server's placeholder (Reconciling, AwaitingOperator)
-- until the operator first writes the status.
local reconciling = condition("Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  return from("Progressing", reconciling)
end
hs.status = "Progressing"
hs.message = "Waiting for the Ready condition"
return hs
